// Package store is the gateway's only door to PostgreSQL: every SQL statement
// lives here, next to the method that runs it. Methods that read member data
// take an auth.Principal and apply the policy's scope in the SQL itself, so
// rows a principal may not see are never fetched; there is no unscoped
// variant of a member read.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"time"

	"github.com/golang-migrate/migrate/v4"
	"github.com/golang-migrate/migrate/v4/database/postgres"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"example.com/gateway/gateway"
)

// DB is the gateway's database handle.
type DB struct {
	*sqlx.DB
	// Now is the clock used for "today" in the policy; tests may replace it.
	Now func() time.Time
	// UpcomingDays is ATTRIBUTION_UPCOMING_DAYS (DESIGN.md §1 rule 3).
	UpcomingDays int

	stmts sync.Map // query → *sqlx.Stmt: prepared member reads (see preparedRead)
}

// Options tune the connection pool.
type Options struct {
	MaxConns int // default 4
}

// Open connects to url and checks the connection.
func Open(ctx context.Context, url string, opts Options) (*DB, error) {
	db, err := sqlx.Open("postgres", url)
	if err != nil {
		return nil, err
	}
	maxConns := opts.MaxConns
	if maxConns <= 0 {
		maxConns = 4
	}
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pingCtx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	return &DB{DB: db, Now: time.Now, UpcomingDays: 30}, nil
}

// Migrate applies every migration in migrations that the database lacks. It
// runs on one dedicated connection, so closing the migrator leaves the pool
// open; concurrent migrators are serialized by golang-migrate's advisory lock.
func Migrate(ctx context.Context, db *DB, migrations fs.FS) error {
	conn, err := db.DB.DB.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	driver, err := postgres.WithConnection(ctx, conn, &postgres.Config{})
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	src, err := iofs.New(migrations, ".")
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	m, err := migrate.NewWithInstance("iofs", src, "postgres", driver)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if err := m.Up(); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// Ping reports whether the database answers (readiness).
func (db *DB) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return db.PingContext(ctx)
}

// today is the policy's "today" (attribution states, DESIGN.md §1 rule 3).
func (db *DB) today() gateway.Date { return gateway.DateOf(db.Now()) }

// inTx runs fn in a transaction, committing when fn returns nil.
func (db *DB) inTx(ctx context.Context, fn func(tx *sqlx.Tx) error) (err error) {
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if err = fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// isUniqueViolation reports whether err is a unique_violation on constraint
// (any constraint when constraint is "").
func isUniqueViolation(err error, constraint string) bool {
	var pqErr *pq.Error
	return errors.As(err, &pqErr) && pqErr.Code == "23505" &&
		(constraint == "" || pqErr.Constraint == constraint)
}

// isForeignKeyViolation reports whether err is a foreign_key_violation on
// constraint.
func isForeignKeyViolation(err error, constraint string) bool {
	var pqErr *pq.Error
	return errors.As(err, &pqErr) && pqErr.Code == "23503" && pqErr.Constraint == constraint
}

// notFound maps sql.ErrNoRows to the one NOT_FOUND answer.
func notFound(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return gateway.ErrNotFound
	}
	return err
}
