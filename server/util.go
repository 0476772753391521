package server

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"

	"github.com/lib/pq"
)

func hashPath(p string) string {
	sum := sha256.Sum256([]byte(p))
	return hex.EncodeToString(sum[:6])
}

func isDuplicateDatabase(err error) bool {
	var pqErr *pq.Error
	return errors.As(err, &pqErr) && pqErr.Code == "42P04"
}
