package export

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"
	"testing"
	"time"

	"example.com/gateway/gateway"
	"example.com/gateway/store"
)

// The kill test's worker process is this test binary, re-executed with
// workerEnv set: it runs only an export Runner against the test database
// and directory named in the environment, until it is killed.
const (
	workerEnv      = "EXPORT_TEST_WORKER"
	workerDBEnv    = "EXPORT_TEST_WORKER_DB"
	workerDirEnv   = "EXPORT_TEST_WORKER_DIR"
	workerDelayEnv = "EXPORT_TEST_WORKER_DELAY" // pause after each batch, to be killed mid-job
)

func workerMain() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	db, err := store.Open(ctx, os.Getenv(workerDBEnv), store.Options{MaxConns: 4})
	if err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		return 1
	}
	defer db.Close()
	delay, _ := time.ParseDuration(os.Getenv(workerDelayEnv))
	r := &Runner{
		Service:   &Service{DB: db, Dir: os.Getenv(workerDirEnv)},
		Logger:    slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Workers:   1,
		BatchSize: 2,
		FileLimit: 5,
		Lease:     1500 * time.Millisecond,
		Poll:      50 * time.Millisecond,
		ID:        "worker-" + strconv.Itoa(os.Getpid()),
		afterBatch: func(gateway.ExportJob, int) {
			time.Sleep(delay)
		},
	}
	r.Run(ctx)
	return 0
}

// TestKillWorkerMidJob kills a real worker process with SIGKILL in the
// middle of a job, starts another, and checks that the job completes with
// every resource exactly once.
func TestKillWorkerMidJob(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for range 8 {
		m := f.member(false)
		f.attribute(m, f.org.ID, f.today.AddDays(-5), gateway.Date{})
		f.claim(m, "2022-01-01", false, &f.prac1, nil)
		f.claim(m, "2022-02-01", false, nil, nil)
		f.encounter(m, "2022-03-01T09:00:00Z", false, &f.prac1)
	}
	job := f.enqueue(Request{Operation: gateway.OpPatientExport})

	start := func(delay string) *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), workerEnv+"=1", workerDBEnv+"="+f.dbURL, workerDirEnv+"="+f.svc.Dir,
			workerDelayEnv+"="+delay)
		cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd
	}

	first := start("300ms")
	// Wait until the worker has checkpointed some batches, not all.
	deadline := time.Now().Add(20 * time.Second)
	for {
		j := f.job(job.ID)
		if j.BatchesDone >= 2 {
			if j.Status != gateway.ExportRunning {
				t.Fatalf("job %s before the kill", j.Status)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the worker made no progress: %+v", j)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.Wait()
	killed := f.job(job.ID)
	if killed.Status != gateway.ExportRunning || killed.MembersDone >= 10 {
		t.Fatalf("after SIGKILL: %s, %d members done", killed.Status, killed.MembersDone)
	}

	start("0s") // a new worker: takes the job over once the lease expires
	for {
		j := f.job(job.ID)
		if j.Status == gateway.ExportCompleted {
			break
		}
		if j.Status == gateway.ExportFailed || time.Now().After(deadline.Add(20*time.Second)) {
			t.Fatalf("job after restart: %+v", j)
		}
		time.Sleep(50 * time.Millisecond)
	}
	j := f.job(job.ID)
	if j.Attempts != 2 {
		t.Errorf("attempts %d, want 2", j.Attempts)
	}
	got, _ := f.exported(j) // fails on duplicates and on counts that differ from lines
	if n := countType(got, "Patient"); n != 10 {
		t.Errorf("patients %d, want 10", n)
	}
	if n := countType(got, "ExplanationOfBenefit"); n != 2*4+8*2 {
		t.Errorf("EOBs %d, want 24", n)
	}
	if n := countType(got, "Encounter"); n != 2+8 {
		t.Errorf("encounters %d, want 10", n)
	}
	if n := countType(got, "Practitioner"); n != 1 {
		t.Errorf("practitioners %d, want 1 (exported once)", n)
	}
}
