package auth

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Failed client authentications are throttled per client id and per source
// address, in each instance's memory (golang.org/x/time/rate): with N
// instances behind a load balancer an attacker gets at most N times these
// rates. Only failures count. An address over its budget gets 429 before
// anything is verified; a client id over its budget gets 429 instead of 401
// for further failures, while its correct credentials keep working (so
// failing in a client's name cannot lock it out). A source address is the
// TCP peer: behind a proxy every client shares the proxy's address, so the
// per-address budget is deliberately larger.
const (
	clientFailBurst = 10               // failures in a row before 429
	clientFailEvery = 6 * time.Second  // then one more every 6 s (10 per minute)
	addrFailBurst   = 50               //
	addrFailEvery   = 1 * time.Second  // 60 per minute
	throttleMaxKeys = 50000            // per map; beyond it the fullest buckets are dropped
	throttleSweep   = 1 * time.Minute  //
	throttleIdle    = 10 * time.Minute // buckets untouched this long are forgotten
)

type throttle struct {
	mu        sync.Mutex
	clients   map[string]*bucket
	addrs     map[string]*bucket
	lastSweep time.Time
}

type bucket struct {
	lim  *rate.Limiter
	used time.Time
}

func newThrottle() *throttle {
	return &throttle{clients: map[string]*bucket{}, addrs: map[string]*bucket{}}
}

// blocked reports whether requests for clientID (may be "") or from addr
// must wait, and for how long.
func (t *throttle) blocked(clientID, addr string, now time.Time) (time.Duration, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var wait time.Duration
	if b := t.clients[clientID]; clientID != "" && b != nil {
		wait = max(wait, untilOne(b.lim, now))
	}
	if b := t.addrs[addr]; addr != "" && b != nil {
		wait = max(wait, untilOne(b.lim, now))
	}
	return wait, wait > 0
}

// fail records a failed authentication.
func (t *throttle) fail(clientID, addr string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if now.Sub(t.lastSweep) > throttleSweep {
		t.sweepLocked(now)
	}
	if clientID != "" {
		take(t.clients, clientID, rate.Every(clientFailEvery), clientFailBurst, now)
	}
	if addr != "" {
		take(t.addrs, addr, rate.Every(addrFailEvery), addrFailBurst, now)
	}
}

func take(m map[string]*bucket, key string, r rate.Limit, burst int, now time.Time) {
	b := m[key]
	if b == nil {
		if len(m) >= throttleMaxKeys {
			clear(m) // under a flood of distinct keys, forgetting beats growing without bound
		}
		b = &bucket{lim: rate.NewLimiter(r, burst)}
		m[key] = b
	}
	b.used = now
	b.lim.AllowN(now, 1)
}

func untilOne(lim *rate.Limiter, now time.Time) time.Duration {
	tokens := lim.TokensAt(now)
	if tokens >= 1 {
		return 0
	}
	secs := (1 - tokens) / float64(lim.Limit())
	return time.Duration(math.Ceil(secs)) * time.Second
}

func (t *throttle) sweepLocked(now time.Time) {
	t.lastSweep = now
	for _, m := range []map[string]*bucket{t.clients, t.addrs} {
		for k, b := range m {
			if now.Sub(b.used) > throttleIdle {
				delete(m, k)
			}
		}
	}
}
