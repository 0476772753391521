package server

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"mime/quotedprintable"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"example.com/gateway/auth"
	"example.com/gateway/gateway"
	"example.com/gateway/store"
	"example.com/gateway/store/storetest"
)

// fakeSMTP is a minimal SMTP server (RFC 5321: EHLO, MAIL, RCPT, DATA,
// QUIT) that records what it receives.
type fakeSMTP struct {
	ln   net.Listener
	mu   sync.Mutex
	mail []receivedMail
}

type receivedMail struct{ from, to, data string }

func newFakeSMTP(t *testing.T) *fakeSMTP {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeSMTP{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go f.serve(c)
		}
	}()
	return f
}

func (f *fakeSMTP) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	say := func(s string) { io.WriteString(c, s+"\r\n") }
	say("220 fake ESMTP")
	var cur receivedMail
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.ToUpper(strings.TrimSpace(line))
		switch {
		case strings.HasPrefix(cmd, "EHLO"), strings.HasPrefix(cmd, "HELO"):
			say("250-fake")
			say("250 8BITMIME")
		case strings.HasPrefix(cmd, "MAIL FROM:"):
			cur = receivedMail{from: smtpPath(line[10:])}
			say("250 ok")
		case strings.HasPrefix(cmd, "RCPT TO:"):
			cur.to = smtpPath(line[8:])
			say("250 ok")
		case cmd == "DATA":
			say("354 go on")
			var data strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				data.WriteString(l)
			}
			cur.data = data.String()
			f.mu.Lock()
			f.mail = append(f.mail, cur)
			f.mu.Unlock()
			say("250 queued")
		case cmd == "QUIT":
			say("221 bye")
			return
		default:
			say("250 ok")
		}
	}
}

// smtpPath returns the address of "<addr> PARAMS".
func smtpPath(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), ">")
	return strings.TrimPrefix(s, "<")
}

func (f *fakeSMTP) received() []receivedMail {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]receivedMail(nil), f.mail...)
}

func TestParseSMTPURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		url, addr, from string
		tls, bad        bool
	}{
		{url: "smtp://mail.example.test", addr: "mail.example.test:587", from: "provider-access-gateway@mail.example.test"},
		{url: "smtps://u:p@mail.example.test?from=portal@payer.test", addr: "mail.example.test:465", from: "portal@payer.test", tls: true},
		{url: "smtp://127.0.0.1:2525", addr: "127.0.0.1:2525", from: "provider-access-gateway@127.0.0.1"},
		{url: "http://mail.example.test", bad: true},
		{url: "smtp://", bad: true},
		{url: "smtp://mail.example.test?from=x%0d%0aBcc:a@b", bad: true},
	}
	for _, tt := range tests {
		m, err := ParseSMTPURL(tt.url)
		if tt.bad {
			if err == nil {
				t.Errorf("%s: accepted", tt.url)
			}
			continue
		}
		if err != nil || m.addr != tt.addr || m.from != tt.from || m.implicitTLS != tt.tls {
			t.Errorf("%s: %+v %v", tt.url, m, err)
		}
	}
}

// TestOutboxDelivery queues an invitation through the portal and delivers
// it to an SMTP server.
func TestOutboxDelivery(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := t.Context()
	smtpd := newFakeSMTP(t)
	u, err := db.UserFromSignIn(ctx, "https://idp.example.test", "s1", "admin@clinic.test", "")
	if err != nil {
		t.Fatal(err)
	}
	admin := auth.PersonPrincipal(u, false)
	org, err := db.RegisterOrganization(ctx, admin, store.NewOrganization{Name: "Clínica Norte", Type: gateway.OrgProviderHealthSystem,
		NPI: "1234567893", TIN: "123456789"}, store.Mutation{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.InviteUser(ctx, admin, store.NewInvitation{OrganizationID: org.ID, Email: "nurse@clinic.test"}, store.Mutation{}); err != nil {
		t.Fatal(err)
	}
	m, err := ParseSMTPURL("smtp://" + smtpd.ln.Addr().String() + "?from=portal@payer.test")
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		runOutbox(runCtx, db, m, slog.New(slog.DiscardHandler))
		close(done)
	}()
	// Delivered means sent and recorded sent: the mark commits after the
	// SMTP server has the message.
	unsent := func() (n int) {
		db.Get(&n, `SELECT count(*) FROM email_outbox WHERE sent_at IS NULL`)
		return n
	}
	deadline := time.Now().Add(10 * time.Second)
	for (len(smtpd.received()) == 0 || unsent() != 0) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	<-done
	got := smtpd.received()
	if len(got) != 1 || got[0].to != "nurse@clinic.test" || got[0].from != "portal@payer.test" {
		t.Fatalf("received %+v", got)
	}
	head, body, _ := strings.Cut(got[0].data, "\r\n\r\n")
	if !strings.Contains(head, "Subject: =?utf-8?q?Invitation_to_Cl=C3=ADnica_Norte") || !strings.Contains(head, "To: nurse@clinic.test") {
		t.Errorf("headers:\n%s", head)
	}
	text, _ := io.ReadAll(quotedprintable.NewReader(strings.NewReader(body)))
	if !strings.Contains(string(text), "Clínica Norte") {
		t.Errorf("body:\n%s", text)
	}
	if n := unsent(); n != 0 {
		t.Errorf("%d messages still unsent", n)
	}
}
