// Package loadgen is a closed-loop HTTP load generator: a fixed number of
// clients, each sending its next request as soon as the previous response
// has been read, for a fixed duration. It reports throughput and latency
// percentiles. scripts/loadtest-graphql.sh uses it (through the in-process
// GraphQL load test in server, or cmd/loadgen against a running gateway).
package loadgen

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Options describe a run.
type Options struct {
	Clients  int           // concurrent clients (default 8)
	Duration time.Duration // measured duration (default 15s)
	Warmup   time.Duration // unmeasured warm-up before it (default 2s)
	// NewRequest returns the i-th request of client c. It must return a new
	// request each time (bodies are consumed).
	NewRequest func(c, i int) *http.Request
	// Check validates a response (status and body); nil accepts 200s.
	Check  func(status int, body []byte) error
	Client *http.Client // default: keep-alive transport sized for Clients
}

// Result is what a run measured.
type Result struct {
	Requests   int
	Errors     int
	FirstError error
	Elapsed    time.Duration
	Bytes      int64 // response bytes, measured requests only
	Latencies  []time.Duration
}

// RPS returns the measured requests per second.
func (r Result) RPS() float64 { return float64(r.Requests) / r.Elapsed.Seconds() }

// Percentile returns the p-th percentile latency (0 < p ≤ 100).
func (r Result) Percentile(p float64) time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	s := slices.Clone(r.Latencies)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func (r Result) String() string {
	return fmt.Sprintf("%d requests in %.1fs: %.0f req/s, p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms, %d errors, %.1f KB/response",
		r.Requests, r.Elapsed.Seconds(), r.RPS(), ms(r.Percentile(50)), ms(r.Percentile(90)), ms(r.Percentile(99)),
		ms(r.Percentile(100)), r.Errors, float64(r.Bytes)/float64(max(r.Requests, 1))/1024)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Run runs the load described by o until its duration has passed or ctx
// is done.
func Run(ctx context.Context, o Options) Result {
	if o.Clients <= 0 {
		o.Clients = 8
	}
	if o.Duration <= 0 {
		o.Duration = 15 * time.Second
	}
	if o.Warmup < 0 {
		o.Warmup = 0
	} else if o.Warmup == 0 {
		o.Warmup = 2 * time.Second
	}
	client := o.Client
	if client == nil {
		client = &http.Client{Transport: &http.Transport{
			MaxIdleConns:        o.Clients,
			MaxIdleConnsPerHost: o.Clients,
			DisableCompression:  true,
		}}
	}
	check := o.Check
	if check == nil {
		check = func(status int, _ []byte) error {
			if status != http.StatusOK {
				return fmt.Errorf("status %d", status)
			}
			return nil
		}
	}
	start := time.Now()
	measureFrom := start.Add(o.Warmup)
	end := measureFrom.Add(o.Duration)
	ctx, cancel := context.WithDeadline(ctx, end)
	defer cancel()

	var mu sync.Mutex
	var res Result
	var wg sync.WaitGroup
	for c := range o.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat []time.Duration
			var n, errs int
			var bytes int64
			var firstErr error
			for i := 0; ctx.Err() == nil; i++ {
				req := o.NewRequest(c, i).WithContext(ctx)
				t0 := time.Now()
				resp, err := client.Do(req)
				var body []byte
				if err == nil {
					body, err = io.ReadAll(resp.Body)
					resp.Body.Close()
					if err == nil {
						err = check(resp.StatusCode, body)
					}
				}
				t1 := time.Now()
				if t0.Before(measureFrom) || t1.After(end) {
					continue // warm-up, or cut by the deadline
				}
				if err != nil {
					errs++
					if firstErr == nil {
						firstErr = err
					}
					continue
				}
				n++
				bytes += int64(len(body))
				lat = append(lat, t1.Sub(t0))
			}
			mu.Lock()
			defer mu.Unlock()
			res.Requests += n
			res.Errors += errs
			res.Bytes += bytes
			res.Latencies = append(res.Latencies, lat...)
			if res.FirstError == nil {
				res.FirstError = firstErr
			}
		}()
	}
	wg.Wait()
	res.Elapsed = time.Since(measureFrom)
	if res.Elapsed > o.Duration {
		res.Elapsed = o.Duration
	}
	return res
}
