package store

import (
	"context"
	"time"

	"github.com/jmoiron/sqlx"

	"example.com/gateway/auth"
	"example.com/gateway/gateway"
)

// The email outbox: messages are queued in the transaction of the change
// they report (queueEmail), delivered by the server's outbox worker when
// SMTP_URL is set, and read by operators either way.

const outboxColumns = `id, to_address, subject, body, created_at, sent_at, attempts, last_error`

const outboxPageSQL = `
SELECT ` + outboxColumns + ` FROM email_outbox
WHERE ($1::boolean IS NULL OR (sent_at IS NULL) = $1)
  AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3::uuid))
ORDER BY created_at DESC, id DESC
LIMIT $4`

// Outbox lists queued and sent emails for operators, newest first;
// unsent narrows it to those not yet delivered (or, false, delivered).
// Returns FORBIDDEN for anyone else.
func (db *DB) Outbox(ctx context.Context, p auth.Principal, unsent *bool, page Page) (Paged[*gateway.OutboxMessage], error) {
	var out Paged[*gateway.OutboxMessage]
	a, _, err := db.portalActor(ctx, p)
	if err != nil {
		return out, err
	}
	if err := a.Can(auth.RightReadOutbox, ""); err != nil {
		return out, err
	}
	var afterTime, afterID any
	if page.After != "" {
		parts, err := parseCursor(page.After, "e", 2)
		if err != nil {
			return out, err
		}
		if afterID, err = uuidCursorPart(parts[1]); err != nil {
			return out, err
		}
		afterTime = parts[0]
	}
	var rows []*gateway.OutboxMessage
	if err := db.SelectContext(ctx, &rows, outboxPageSQL, unsent, afterTime, afterID, page.First+1); err != nil {
		return out, err
	}
	return pageOf(rows, page, func(e *gateway.OutboxMessage) string {
		return pageCursor("e", e.CreatedAt.UTC().Format(time.RFC3339Nano), e.ID)
	}), nil
}

// MaxOutboxAttempts is how often delivery of one message is tried before
// it is left for an operator to read.
const MaxOutboxAttempts = 10

const claimOutboxSQL = `
SELECT ` + outboxColumns + ` FROM email_outbox
WHERE sent_at IS NULL AND attempts < $1 AND next_attempt_at <= now()
ORDER BY next_attempt_at, id
LIMIT $2
FOR UPDATE SKIP LOCKED`

const markOutboxSentSQL = `UPDATE email_outbox SET sent_at = now(), attempts = attempts + 1, last_error = '' WHERE id = $1`

// markOutboxFailedSQL backs off exponentially: 1, 2, 4 … minutes, at most
// an hour.
const markOutboxFailedSQL = `
UPDATE email_outbox SET attempts = attempts + 1, last_error = left($2, 500),
  next_attempt_at = now() + least(interval '1 hour', interval '1 minute' * power(2, attempts))
WHERE id = $1`

// DeliverOutbox claims up to limit messages due for delivery and calls send
// for each, recording it sent or, with send's error, due again later with
// backoff. Claimed rows stay locked until the batch is recorded, so several
// instances deliver each message once. It returns how many were sent.
// It runs once (txOnce, never retried): send is mail leaving the building,
// which a second run of the transaction would send again.
func (db *DB) DeliverOutbox(ctx context.Context, limit int, send func(gateway.OutboxMessage) error) (sent int, err error) {
	err = db.txOnce(ctx, func(tx *sqlx.Tx) error {
		var batch []gateway.OutboxMessage
		if err := tx.SelectContext(ctx, &batch, claimOutboxSQL, MaxOutboxAttempts, limit); err != nil {
			return err
		}
		for _, msg := range batch {
			if err := send(msg); err != nil {
				if _, err := tx.ExecContext(ctx, markOutboxFailedSQL, msg.ID, err.Error()); err != nil {
					return err
				}
				continue
			}
			if _, err := tx.ExecContext(ctx, markOutboxSentSQL, msg.ID); err != nil {
				return err
			}
			sent++
		}
		return nil
	})
	return sent, err
}
