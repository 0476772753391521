package server

import (
	"cmp"
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"example.com/gateway/fhir"
	"example.com/gateway/gateway"
)

// securityHeaders sets headers every response carries. Responses with
// member data must never be cached by a proxy or browser.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// cors answers cross-origin requests from the portal front-ends listed in
// CORS_ALLOWED_ORIGINS, by exact origin only. Credentials are bearer tokens
// in the Authorization header, never cookies, so Allow-Credentials stays off.
func cors(allowed []string, next http.Handler) http.Handler {
	if len(allowed) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" || !slices.Contains(allowed, origin) {
			if r.Method == http.MethodOptions && origin != "" {
				w.WriteHeader(http.StatusForbidden)
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Add("Vary", "Origin")
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Expose-Headers", "Content-Location, X-Progress, Retry-After, Expires, X-Request-Id")
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Methods", "GET, POST, DELETE")
			h.Set("Access-Control-Allow-Headers", allowedRequestHeaders(r.Header.Get("Access-Control-Request-Headers")))
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// allowedRequestHeaders keeps the requested headers a front-end may send.
func allowedRequestHeaders(requested string) string {
	ok := []string{"authorization", "content-type", "accept", "prefer", "x-request-id"}
	var out []string
	for _, h := range strings.Split(requested, ",") {
		h = strings.ToLower(strings.TrimSpace(h))
		if slices.Contains(ok, h) {
			out = append(out, h)
		}
	}
	if len(out) == 0 {
		return "authorization, content-type"
	}
	return strings.Join(out, ", ")
}

// Answers while the database (or the people's identity provider) cannot be
// reached: HTTP 503 with Retry-After, in the shape of the path's API, so a
// client retries instead of discarding good credentials or giving up.
const (
	unavailableMessage    = "the service is temporarily unavailable; retry later"
	unavailableRetryAfter = "2"
)

func writeUnavailable(w http.ResponseWriter, r *http.Request) {
	writeRetryLater(w, r, refusal{status: http.StatusServiceUnavailable, retryAfter: unavailableRetryAfter,
		code: gateway.CodeInternal, issue: "transient", message: unavailableMessage})
}

// refusal is an answer given before the request reaches its API: a status
// with Retry-After, the GraphQL error code and the FHIR issue code.
type refusal struct {
	status            int
	retryAfter        string // delay-seconds
	code, issue       string
	message, fhirText string // fhirText: the diagnostics, when not message
}

// writeRetryLater writes f in the shape of the path's API: an
// OperationOutcome under /fhir/, a GraphQL error response elsewhere.
func writeRetryLater(w http.ResponseWriter, r *http.Request, f refusal) {
	h := w.Header()
	h.Set("Retry-After", f.retryAfter)
	h.Set("Cache-Control", "no-store")
	if strings.HasPrefix(r.URL.Path, "/fhir/") {
		h.Set("Content-Type", "application/fhir+json")
		w.WriteHeader(f.status)
		json.NewEncoder(w).Encode(fhir.NewOperationOutcome("error", f.issue, cmp.Or(f.fhirText, f.message)))
		return
	}
	h.Set("Content-Type", mediaJSON)
	w.WriteHeader(f.status)
	json.NewEncoder(w).Encode(map[string]any{"errors": []any{map[string]any{
		"message": f.message, "extensions": map[string]any{"code": f.code},
	}}})
}
