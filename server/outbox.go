package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/smtp"
	"net/url"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"example.com/gateway/gateway"
	"example.com/gateway/store"
)

// The email outbox's delivery. Portal changes queue their emails in the
// database in the same transaction (store), so a message exists exactly
// when its change committed; this worker sends them when SMTP_URL is set.
// Without it mail stays in the outbox, which operators read over GraphQL.

const (
	outboxPoll    = 5 * time.Second
	outboxBatch   = 20
	smtpTimeout   = 30 * time.Second
	defaultSender = "provider-access-gateway"
)

// startOutbox starts the outbox's delivery on the process context when
// SMTP_URL is set. An unusable SMTP_URL stops the server with the reason.
func (s *Server) startOutbox(ctx context.Context, g *errgroup.Group) {
	if s.Config.SMTPURL == "" {
		return
	}
	m, err := ParseSMTPURL(s.Config.SMTPURL)
	if err != nil {
		g.Go(func() error { return fmt.Errorf("SMTP_URL: %w", err) })
		return
	}
	g.Go(func() error {
		runOutbox(ctx, s.backgroundDB(), m, s.Logger) // mail is sent inside its transaction: no statement timeout
		return nil
	})
}

// runOutbox delivers due messages until ctx ends, polling while idle.
func runOutbox(ctx context.Context, db *store.DB, m *Mailer, logger *slog.Logger) {
	logger.Info("outbox delivery", "smtp", m.addr, "from", m.from)
	tick := time.NewTicker(outboxPoll)
	defer tick.Stop()
	for {
		sent, err := db.DeliverOutbox(ctx, outboxBatch, func(msg gateway.OutboxMessage) error {
			if err := m.Send(ctx, msg); err != nil {
				logger.WarnContext(ctx, "email not delivered", "message", msg.ID, "err", err)
				return err
			}
			return nil
		})
		switch {
		case err != nil && ctx.Err() == nil:
			logger.ErrorContext(ctx, "outbox delivery", "err", err)
		case sent == outboxBatch:
			continue // more may be due
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Mailer sends email through one SMTP server.
type Mailer struct {
	addr        string // host:port
	host        string
	from        string
	user, pass  string
	implicitTLS bool
}

// ParseSMTPURL reads SMTP_URL: smtp://[user:password@]host[:port][?from=address]
// (port 587 by default; STARTTLS whenever the server offers it) or smtps://…
// (TLS from the start, port 465 by default). Credentials are sent with
// SMTP AUTH PLAIN, which net/smtp allows only over TLS or to localhost.
func ParseSMTPURL(raw string) (*Mailer, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("not a URL")
	}
	m := &Mailer{host: u.Hostname()}
	port := u.Port()
	switch u.Scheme {
	case "smtp":
		if port == "" {
			port = "587"
		}
	case "smtps":
		m.implicitTLS = true
		if port == "" {
			port = "465"
		}
	default:
		return nil, fmt.Errorf("scheme must be smtp or smtps")
	}
	if m.host == "" {
		return nil, fmt.Errorf("no host")
	}
	m.addr = net.JoinHostPort(m.host, port)
	if u.User != nil {
		m.user = u.User.Username()
		m.pass, _ = u.User.Password()
	}
	m.from = u.Query().Get("from")
	if m.from == "" {
		m.from = defaultSender + "@" + m.host
	}
	if !strings.Contains(m.from, "@") || strings.ContainsAny(m.from, "\r\n<>") {
		return nil, fmt.Errorf("from %q is not an address", m.from)
	}
	return m, nil
}

// Send delivers one message, within smtpTimeout.
func (m *Mailer) Send(ctx context.Context, msg gateway.OutboxMessage) error {
	if strings.ContainsAny(msg.To, "\r\n<>") {
		return fmt.Errorf("recipient is not an address")
	}
	ctx, cancel := context.WithTimeout(ctx, smtpTimeout)
	defer cancel()
	d := &net.Dialer{}
	var conn net.Conn
	var err error
	if m.implicitTLS {
		conn, err = (&tls.Dialer{NetDialer: d, Config: &tls.Config{ServerName: m.host}}).DialContext(ctx, "tcp", m.addr)
	} else {
		conn, err = d.DialContext(ctx, "tcp", m.addr)
	}
	if err != nil {
		return err
	}
	deadline, _ := ctx.Deadline()
	conn.SetDeadline(deadline)
	c, err := smtp.NewClient(conn, m.host)
	if err != nil {
		conn.Close()
		return err
	}
	defer c.Close()
	if ok, _ := c.Extension("STARTTLS"); ok && !m.implicitTLS {
		if err := c.StartTLS(&tls.Config{ServerName: m.host}); err != nil {
			return err
		}
	}
	if m.user != "" {
		if err := c.Auth(smtp.PlainAuth("", m.user, m.pass, m.host)); err != nil {
			return err
		}
	}
	if err := c.Mail(m.from); err != nil {
		return err
	}
	if err := c.Rcpt(msg.To); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(m.message(msg)); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// message renders msg as an RFC 5322 message: UTF-8 text, quoted-printable,
// the subject encoded per RFC 2047. Its Message-ID is the outbox id, so a
// message delivered twice (a crash between sending and recording) can be
// recognised by the receiving side.
func (m *Mailer) message(msg gateway.OutboxMessage) []byte {
	var b bytes.Buffer
	h := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	h("From", m.from)
	h("To", msg.To)
	h("Subject", mime.QEncoding.Encode("utf-8", msg.Subject))
	h("Date", msg.CreatedAt.UTC().Format(time.RFC1123Z))
	h("Message-ID", "<"+msg.ID+"@"+m.host+">")
	h("MIME-Version", "1.0")
	h("Content-Type", "text/plain; charset=utf-8")
	h("Content-Transfer-Encoding", "quoted-printable")
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	qp.Write([]byte(strings.ReplaceAll(strings.ReplaceAll(msg.Body, "\r\n", "\n"), "\n", "\r\n")))
	qp.Close()
	return b.Bytes()
}
