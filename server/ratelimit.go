package server

import (
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"example.com/gateway/auth"
	"example.com/gateway/gateway"
)

// Per-client rate limits of /graphql and /fhir/… (issue 7, "Limits"): a
// token bucket per principal (an API client, or a person), refilled at
// RateLimits.PerSecond up to RateLimits.Burst. A request over the limit is
// refused before any work with HTTP 429 and Retry-After: on /graphql a
// GraphQL response whose error has extensions.code RATE_LIMITED, on /fhir
// an OperationOutcome with issue code "throttled".
//
// The buckets live in the instance's memory: with N instances behind a
// load balancer a client may make up to N times the limit. That is accepted
// (the limit protects each instance and the database from one client's
// burst; it is not a quota). Anonymous GraphQL requests share a bucket per
// source address (behind a proxy, the proxy's: one bucket for all of them);
// anonymous FHIR requests are discovery, or answered 401 before any work;
// the token endpoint has its own failure throttle per client id and source
// address (auth).
const (
	DefaultRatePerSecond = 50
	DefaultRateBurst     = 100
)

// RateLimits are the per-client limits; zero fields take the defaults.
type RateLimits struct {
	PerSecond float64
	Burst     int
}

// clientLimiter holds one token bucket per principal.
type clientLimiter struct {
	limit rate.Limit
	burst int
	now   func() time.Time

	mu        sync.Mutex
	buckets   map[string]*rate.Limiter
	lastSweep time.Time
}

// newClientLimiter returns the buckets of limits, on the clock now
// (time.Now when nil).
func newClientLimiter(limits RateLimits, now func() time.Time) *clientLimiter {
	if limits.PerSecond <= 0 {
		limits.PerSecond = DefaultRatePerSecond
	}
	if limits.Burst <= 0 {
		limits.Burst = DefaultRateBurst
	}
	if now == nil {
		now = time.Now
	}
	return &clientLimiter{limit: rate.Limit(limits.PerSecond), burst: limits.Burst, now: now,
		buckets: map[string]*rate.Limiter{}, lastSweep: now()}
}

// allow takes a token from key's bucket; when there is none it returns
// false and how long until one is there.
func (c *clientLimiter) allow(key string) (bool, time.Duration) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sweepLocked(now)
	lim, ok := c.buckets[key]
	if !ok {
		lim = rate.NewLimiter(c.limit, c.burst)
		c.buckets[key] = lim
	}
	if lim.AllowN(now, 1) {
		return true, 0
	}
	r := lim.ReserveN(now, 1)
	wait := r.DelayFrom(now)
	r.CancelAt(now)
	return false, wait
}

// sweepLocked forgets, at most once a minute, the buckets that are full
// again (a full bucket is the same as none), so memory follows the clients
// active in the last minute, not every client ever seen.
func (c *clientLimiter) sweepLocked(now time.Time) {
	if now.Sub(c.lastSweep) < time.Minute {
		return
	}
	c.lastSweep = now
	for k, lim := range c.buckets {
		if lim.TokensAt(now) >= float64(c.burst) {
			delete(c.buckets, k)
		}
	}
}

// rateLimit limits /graphql and /fhir/… requests per principal with the
// default limits. It reads the principal the authentication middleware put
// in the context, so it must run inside (after) it; it leaves every other
// path alone.
func (s *Server) rateLimit(next http.Handler) http.Handler {
	return s.rateLimitWith(newClientLimiter(RateLimits{}, nil), next)
}

func (s *Server) rateLimitWith(c *clientLimiter, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		graphQL := r.URL.Path == "/graphql"
		if !graphQL && !strings.HasPrefix(r.URL.Path, "/fhir/") {
			next.ServeHTTP(w, r)
			return
		}
		key, limit := "", "client"
		if p, ok := auth.FromContext(r.Context()); ok && !p.IsZero() {
			key = string(p.Kind()) + ":" + p.ID()
		} else if graphQL {
			// Anonymous GraphQL reads nothing but introspection, yet parsing
			// and validating a request within the limits still costs CPU:
			// one bucket per source address.
			key, limit = "addr:"+auth.RemoteIP(r), "anonymous"
		} else {
			next.ServeHTTP(w, r) // FHIR discovery; the rest answers 401
			return
		}
		allowed, wait := c.allow(key)
		if allowed {
			next.ServeHTTP(w, r)
			return
		}
		if s.Metrics != nil {
			s.Metrics.RateLimited.WithLabelValues(limit).Inc()
		}
		// Never log the principal's token; its id is not PHI.
		s.Logger.InfoContext(r.Context(), "rate limited", "key", key, "retry_after", wait.String())
		if r.Body != nil {
			io.Copy(io.Discard, io.LimitReader(r.Body, 64<<10)) // let the connection be reused
		}
		seconds := strconv.Itoa(retryAfterSeconds(wait))
		writeRetryLater(w, r, refusal{status: http.StatusTooManyRequests, retryAfter: seconds,
			code: gateway.CodeRateLimited, issue: "throttled", message: "rate limit exceeded",
			fhirText: "rate limit exceeded: retry after " + seconds + " s"})
	})
}

// retryAfterSeconds is Retry-After's delay-seconds: whole seconds, at
// least 1 (0 would invite an immediate retry that fails again).
func retryAfterSeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}
