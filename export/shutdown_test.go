package export

import (
	"context"
	"testing"
	"time"

	"example.com/gateway/gateway"
)

// TestShutdownHandsTheJobBack stops a runner (as graceful shutdown does:
// its context is cancelled) in the middle of a job, and checks that the job
// is handed back at once, not after its lease, without counting as a failed
// attempt, and that another runner finishes it with every resource exactly
// once.
func TestShutdownHandsTheJobBack(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for range 6 {
		m := f.member(false)
		f.attribute(m, f.org.ID, f.today.AddDays(-5), gateway.Date{})
		f.claim(m, "2022-01-01", false, &f.prac1, nil)
	}
	job := f.enqueue(Request{Operation: gateway.OpPatientExport})

	ctx, shutdown := context.WithCancel(t.Context())
	first := *f.runner
	first.ID, first.Workers, first.Poll = "first", 1, 10*time.Millisecond
	first.Lease = time.Hour // a handover that waited for the lease would never come
	first.afterBatch = func(_ gateway.ExportJob, batch int) {
		if batch == 2 {
			shutdown()
		}
	}
	done := make(chan error, 1)
	go func() { done <- first.Run(ctx) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the runner did not stop after its context was cancelled")
	}

	handed := f.job(job.ID)
	if handed.Status != gateway.ExportRunning || handed.BatchesDone < 2 || handed.MembersDone >= 8 {
		t.Fatalf("after shutdown: %s, %d batches, %d members done; want running, released mid-job", handed.Status, handed.BatchesDone, handed.MembersDone)
	}
	if handed.Attempts != 0 {
		t.Errorf("attempts %d after a graceful release, want 0: a rolling restart is not a failure", handed.Attempts)
	}

	// Another instance claims it at once, although the first lease had an
	// hour to run, and resumes from the checkpoint.
	second := *f.runner
	second.ID = "second"
	ran, err := second.RunOne(t.Context(), "second#0")
	if err != nil || !ran {
		t.Fatalf("the released job was not claimable: ran %v, %v", ran, err)
	}
	j := f.job(job.ID)
	if j.Status != gateway.ExportCompleted || j.Attempts != 1 {
		t.Fatalf("after the second runner: %s, attempts %d", j.Status, j.Attempts)
	}
	got, _ := f.exported(j) // fails on duplicates and on counts that differ from lines
	if n := countType(got, "Patient"); n != 8 {
		t.Errorf("patients %d, want 8", n)
	}
	if n := countType(got, "ExplanationOfBenefit"); n != 2*4+6 {
		t.Errorf("EOBs %d, want 14", n)
	}
}
