package server

import (
	"context"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"example.com/gateway/store"
)

// cpuMeter measures the CPU time of this process and of the PostgreSQL
// backends serving the database, so a benchmark can report CPU per
// request on a machine where wall time is noisy (other work shares it).
type cpuMeter struct {
	db      *store.DB
	goStart time.Duration
	pgStart map[int]time.Duration
}

func startCPUMeter(tb testing.TB, db *store.DB) *cpuMeter {
	m := &cpuMeter{db: db}
	m.goStart = processCPU()
	m.pgStart = m.backendCPU(tb)
	return m
}

// report adds go-cpu-µs/op and pg-cpu-µs/op to b's results.
func (m *cpuMeter) report(b *testing.B, n int) {
	goCPU, pgCPU := m.since(b)
	b.ReportMetric(float64(goCPU.Microseconds())/float64(n), "go-cpu-µs/op")
	b.ReportMetric(float64(pgCPU.Microseconds())/float64(n), "pg-cpu-µs/op")
}

// perRequest returns the milliseconds of CPU per request of this process
// and of PostgreSQL since the meter started.
func (m *cpuMeter) perRequest(tb testing.TB, n int) (goMS, pgMS float64) {
	goCPU, pgCPU := m.since(tb)
	return float64(goCPU.Microseconds()) / 1000 / float64(n), float64(pgCPU.Microseconds()) / 1000 / float64(n)
}

func (m *cpuMeter) since(tb testing.TB) (goCPU, pgCPU time.Duration) {
	goCPU = processCPU() - m.goStart
	for pid, t := range m.backendCPU(tb) {
		pgCPU += t - m.pgStart[pid] // a backend started since counts from zero
	}
	return goCPU, pgCPU
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// backendCPU returns the CPU time of every backend connected to the
// database (the pool's connections), from /proc (clock ticks of 10 ms).
func (m *cpuMeter) backendCPU(tb testing.TB) map[int]time.Duration {
	var pids []int
	if err := m.db.SelectContext(context.Background(), &pids,
		`SELECT pid FROM pg_stat_activity WHERE datname = current_database()`); err != nil {
		tb.Fatal(err)
	}
	out := map[int]time.Duration{}
	for _, pid := range pids {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:]) // fields from 3 on
		utime, _ := strconv.Atoi(f[11])
		stime, _ := strconv.Atoi(f[12])
		out[pid] = time.Duration(utime+stime) * 10 * time.Millisecond
	}
	return out
}
