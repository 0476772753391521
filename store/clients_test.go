package store_test

import (
	"crypto/rand"
	"encoding/json"
	"strconv"
	"sync"
	"testing"
	"time"

	mrand "math/rand/v2"

	"example.com/gateway/auth"
	"example.com/gateway/gateway"
	"example.com/gateway/store"
	"example.com/gateway/store/storetest"
)

// testNPI returns a random NPI that passes the database's Luhn check.
func testNPI() string {
	for {
		npi := ""
		for range 10 {
			npi += strconv.Itoa(mrand.N(10))
		}
		digits, sum := "80840"+npi, 0
		for i := range len(digits) {
			d := int(digits[len(digits)-1-i] - '0')
			if i%2 == 1 {
				if d *= 2; d > 9 {
					d -= 9
				}
			}
			sum += d
		}
		if sum%10 == 0 {
			return npi
		}
	}
}

func testOrg(t *testing.T, db *store.DB) gateway.Organization {
	t.Helper()
	o, err := db.CreateOrganization(t.Context(), gateway.Organization{
		Name: "Org " + rand.Text()[:6], Type: gateway.OrgAccountableCareOrganization, NPI: testNPI(), TIN: "987654321",
	})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func TestOrganizations(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := t.Context()
	o := testOrg(t, db)
	if o.ID == "" || o.Status != gateway.OrgStatusSandbox || o.InNetwork {
		t.Fatalf("created %+v", o)
	}
	if _, err := db.CreateOrganization(ctx, gateway.Organization{Name: "Dup", Type: o.Type, NPI: o.NPI, TIN: o.TIN}); gateway.ErrorCode(err) != gateway.CodeConflict {
		t.Errorf("duplicate NPI: %v", err)
	}
	if err := db.SetOrganizationInNetwork(ctx, o.ID, true); err != nil {
		t.Fatal(err)
	}
	got, err := db.OrganizationByID(ctx, o.ID)
	if err != nil || !got.InNetwork || got.Name != o.Name {
		t.Errorf("OrganizationByID = %+v, %v", got, err)
	}
	for _, id := range []string{"not-a-uuid", "00000000-0000-4000-8000-000000000000"} {
		if _, err := db.OrganizationByID(ctx, id); gateway.ErrorCode(err) != gateway.CodeNotFound {
			t.Errorf("OrganizationByID(%s) = %v", id, err)
		}
		if err := db.SetOrganizationInNetwork(ctx, id, true); gateway.ErrorCode(err) != gateway.CodeNotFound {
			t.Errorf("SetOrganizationInNetwork(%s) = %v", id, err)
		}
	}
}

func TestClients(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := t.Context()
	org := testOrg(t, db)
	c, secret, err := db.CreateClient(ctx, store.NewClient{OrganizationID: org.ID, Name: "dash", Environment: gateway.EnvProduction, AccessType: gateway.ProviderAccess})
	if err != nil {
		t.Fatal(err)
	}
	if c.ID == "" || c.Status != gateway.ClientActive || len(secret) != 43 || len(c.JWKS) != 0 {
		t.Fatalf("created %+v, secret %q", c, secret)
	}
	var stored []byte
	db.Get(&stored, `SELECT sha256 FROM client_secrets WHERE client_id = $1`, c.ID)
	if !auth.SecretMatches(secret, [][]byte{stored}) || string(stored) == secret {
		t.Error("the secret is not stored as its SHA-256 hash")
	}
	if _, _, err := db.CreateClient(ctx, store.NewClient{OrganizationID: org.ID, Name: "dash", Environment: gateway.EnvSandbox, AccessType: gateway.ProviderAccess}); gateway.ErrorCode(err) != gateway.CodeConflict {
		t.Errorf("duplicate name: %v", err)
	}

	// Rotation: the old secret works during the overlap, not after.
	fresh, err := db.RotateClientSecret(ctx, c.ID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	hashes, _ := db.ClientSecretHashes(ctx, c.ID)
	if !auth.SecretMatches(secret, hashes) || !auth.SecretMatches(fresh, hashes) {
		t.Error("during the overlap both secrets must work")
	}
	db.Exec(`UPDATE client_secrets SET expires_at = now() - interval '1 second' WHERE client_id = $1 AND expires_at IS NOT NULL`, c.ID)
	hashes, _ = db.ClientSecretHashes(ctx, c.ID)
	if auth.SecretMatches(secret, hashes) || !auth.SecretMatches(fresh, hashes) {
		t.Error("after the overlap only the new secret works")
	}

	jwks := json.RawMessage(`{"keys":[{"kty":"EC","crv":"P-256","kid":"k1","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}`)
	if err := db.SetClientJWKS(ctx, c.ID, jwks, "https://provider.example/jwks.json"); err != nil {
		t.Fatal(err)
	}
	got, err := db.ClientByID(ctx, c.ID)
	if err != nil || got.JWKSURL != "https://provider.example/jwks.json" {
		t.Fatalf("ClientByID = %+v, %v", got, err)
	}
	var a, b any
	json.Unmarshal(got.JWKS, &a)
	json.Unmarshal(jwks, &b)
	if ja, _ := json.Marshal(a); string(ja) != func() string { jb, _ := json.Marshal(b); return string(jb) }() {
		t.Errorf("JWKS round trip: %s", got.JWKS)
	}
	if err := db.SetClientJWKS(ctx, "nope", jwks, ""); gateway.ErrorCode(err) != gateway.CodeNotFound {
		t.Errorf("SetClientJWKS unknown: %v", err)
	}

	if err := db.RecordTokenIssued(ctx, c.ID, "jti-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.ClientByID(ctx, c.ID); got.LastUsedAt == nil {
		t.Error("last_used_at not set")
	}

	if err := db.RevokeClient(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	if err := db.RevokeClient(ctx, c.ID); err != nil {
		t.Errorf("revoking twice: %v", err)
	}
	if got, _ := db.ClientByID(ctx, c.ID); got.Status != gateway.ClientRevoked || got.RevokedAt == nil {
		t.Errorf("after revocation %+v", got)
	}
	if _, err := db.RotateClientSecret(ctx, c.ID, 0); gateway.ErrorCode(err) != gateway.CodeNotFound {
		t.Errorf("rotating a revoked client's secret: %v", err)
	}
	if err := db.RevokeClient(ctx, "nope"); gateway.ErrorCode(err) != gateway.CodeNotFound {
		t.Errorf("RevokeClient unknown: %v", err)
	}
	if _, err := db.ClientByID(ctx, "nope"); gateway.ErrorCode(err) != gateway.CodeNotFound {
		t.Errorf("ClientByID unknown: %v", err)
	}

	withKeys, secret2, err := db.CreateClient(ctx, store.NewClient{OrganizationID: org.ID, Name: "keys", Environment: gateway.EnvSandbox,
		AccessType: gateway.ProviderAccess, JWKS: jwks})
	if err != nil || secret2 != "" || len(withKeys.JWKS) == 0 {
		t.Errorf("client with a JWKS: %+v, secret %q, %v", withKeys, secret2, err)
	}
}

func TestUseJTI(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := t.Context()
	exp := time.Now().Add(5 * time.Minute)
	if fresh, err := db.UseJTI(ctx, "c1", "j1", exp); err != nil || !fresh {
		t.Fatalf("first use: %v %v", fresh, err)
	}
	if fresh, _ := db.UseJTI(ctx, "c1", "j1", exp); fresh {
		t.Error("replay accepted")
	}
	if fresh, _ := db.UseJTI(ctx, "c2", "j1", exp); !fresh {
		t.Error("another client's jti collides")
	}
	// Concurrent replays on many instances: exactly one wins.
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for range 8 {
		wg.Go(func() {
			if fresh, err := db.UseJTI(ctx, "c1", "race", exp); err == nil && fresh {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if wins != 1 {
		t.Errorf("%d concurrent uses of one jti succeeded, want 1", wins)
	}
	// Past its expiry a jti is forgotten (purged, or taken over if not yet).
	if fresh, _ := db.UseJTI(ctx, "c1", "old", time.Now().Add(-time.Second)); !fresh {
		t.Fatal("first use of old")
	}
	if fresh, _ := db.UseJTI(ctx, "c1", "old", exp); !fresh {
		t.Error("an expired jti row blocks reuse")
	}
	db.Exec(`INSERT INTO used_jtis (client_id, jti, expires_at) VALUES ('c1', 'gone', now() - interval '1 second')`)
	if n, err := db.PurgeExpiredJTIs(ctx); err != nil || n != 1 {
		t.Errorf("purged %d, %v; want 1", n, err)
	}
	var left int
	db.Get(&left, `SELECT count(*) FROM used_jtis`)
	if left != 4 { // j1 twice (two clients), race, old
		t.Errorf("%d jtis remembered, want 4", left)
	}
}

func TestUserFromSignIn(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := t.Context()
	u, err := db.UserFromSignIn(ctx, "https://idp.example", "sub-1", "a@example.test", "A")
	if err != nil || u.ID == "" || u.Email != "a@example.test" || u.Name != "A" || u.Role != gateway.RoleUser {
		t.Fatalf("first sign-in %+v, %v", u, err)
	}
	again, err := db.UserFromSignIn(ctx, "https://idp.example", "sub-1", "a@example.test", "")
	if err != nil || again.ID != u.ID || again.Name != "A" {
		t.Errorf("second sign-in %+v, %v", again, err)
	}
	moved, err := db.UserFromSignIn(ctx, "https://idp.example", "sub-1", "a.new@example.test", "")
	if err != nil || moved.ID != u.ID || moved.Email != "a.new@example.test" {
		t.Errorf("email change %+v, %v", moved, err)
	}
	other, _ := db.UserFromSignIn(ctx, "https://other-idp.example", "sub-1", "a@example.test", "")
	if other.ID == u.ID {
		t.Error("the same subject at another issuer is the same user")
	}
	var n int
	db.Get(&n, `SELECT count(*) FROM users`)
	if n != 2 {
		t.Errorf("%d users, want 2", n)
	}
}

func TestSigningKeys(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := t.Context()
	kek := make([]byte, 32)
	rand.Read(kek)
	// Instances starting together create one key, not one each.
	var wg sync.WaitGroup
	kids := make([]string, 4)
	for i := range kids {
		wg.Go(func() {
			ring, err := auth.OpenKeyRing(ctx, db, kek, nil)
			if err != nil {
				t.Error(err)
				return
			}
			kids[i] = ring.CurrentKID()
		})
	}
	wg.Wait()
	keys, err := db.SigningKeys(ctx)
	if err != nil || len(keys) != 1 {
		t.Fatalf("%d keys after 4 concurrent starts, %v", len(keys), err)
	}
	for _, k := range kids {
		if k != keys[0].KID {
			t.Errorf("instance signs with %s, not %s", k, keys[0].KID)
		}
	}
	// Rotation: the new key is published beside the old; the old retires
	// once superseded for longer than tokens live.
	newKID, err := auth.RotateSigningKey(ctx, db, kek, 0)
	if err != nil {
		t.Fatal(err)
	}
	if keys, _ := db.SigningKeys(ctx); len(keys) != 2 || keys[1].KID != newKID {
		t.Fatalf("after rotation: %+v", keys)
	}
	if n, _ := db.RetireSigningKeys(ctx, time.Now().Add(-10*time.Minute)); n != 0 {
		t.Errorf("retired %d keys right after rotation", n)
	}
	if n, _ := db.RetireSigningKeys(ctx, time.Now().Add(time.Second)); n != 1 {
		t.Errorf("retired %d keys, want the superseded one", n)
	}
	if keys, _ := db.SigningKeys(ctx); len(keys) != 1 || keys[0].KID != newKID {
		t.Errorf("after retirement: %+v", keys)
	}
}

func BenchmarkClientByID(b *testing.B) {
	db := storetest.New(b)
	o, err := db.CreateOrganization(b.Context(), gateway.Organization{Name: "B", Type: gateway.OrgProviderHealthSystem, NPI: testNPI(), TIN: "123456789"})
	if err != nil {
		b.Fatal(err)
	}
	c, _, err := db.CreateClient(b.Context(), store.NewClient{OrganizationID: o.ID, Name: "b", Environment: gateway.EnvSandbox, AccessType: gateway.ProviderAccess})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := db.ClientByID(b.Context(), c.ID); err != nil {
			b.Fatal(err)
		}
	}
}
