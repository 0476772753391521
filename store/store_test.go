package store_test

import (
	"os"
	"testing"

	"example.com/gateway/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(storetest.Main(m)) }

func TestMigrationsFromEmpty(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	var n int
	if err := db.Get(&n, `SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public' AND table_name IN ('members','claims','attributions','audit_events')`); err != nil {
		t.Fatal(err)
	}
	if n != 4 {
		t.Fatalf("tables found = %d, want 4", n)
	}
}
