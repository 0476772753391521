package store

import "context"

// HasSandboxData reports whether any synthetic member exists.
func (db *DB) HasSandboxData(ctx context.Context) (bool, error) {
	var ok bool
	err := db.GetContext(ctx, &ok, `SELECT EXISTS (SELECT 1 FROM members WHERE sandbox)`)
	return ok, err
}
