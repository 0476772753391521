package auth

import "context"

type rejectedKey struct{}

// WithCredentialsRejected returns ctx recording that the request presented
// credentials (a bearer token) that did not verify. Such a request carries
// no Principal; /fhir/ answers it 401 with error="invalid_token"
// (RFC 6750 §3.1) rather than as if no token had been sent.
func WithCredentialsRejected(ctx context.Context) context.Context {
	return context.WithValue(ctx, rejectedKey{}, true)
}

// CredentialsRejected reports whether the request presented credentials that
// did not verify.
func CredentialsRejected(ctx context.Context) bool {
	v, _ := ctx.Value(rejectedKey{}).(bool)
	return v
}
