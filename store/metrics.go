package store

import (
	"context"
	"time"
)

// ExportQueueStats is the state of the export queue for monitoring.
type ExportQueueStats struct {
	ByStatus        map[string]int // QUEUED, RUNNING, COMPLETED, FAILED, CANCELLED
	OldestQueuedAge time.Duration  // zero when nothing waits
}

const exportQueueStatsSQL = `
SELECT status, count(*), coalesce(extract(epoch FROM now() - min(received_at)), 0)
FROM export_jobs
GROUP BY status`

// ExportQueueStats counts export jobs by status and measures how long the
// oldest queued job has waited (the one-business-day obligation of
// 42 CFR 422.121(a)(2) starts at receipt).
func (db *DB) ExportQueueStats(ctx context.Context) (ExportQueueStats, error) {
	s := ExportQueueStats{ByStatus: map[string]int{}}
	rows, err := db.QueryContext(ctx, exportQueueStatsSQL)
	if err != nil {
		return s, err
	}
	defer rows.Close()
	for rows.Next() {
		var status string
		var n int
		var age float64
		if err := rows.Scan(&status, &n, &age); err != nil {
			return s, err
		}
		s.ByStatus[status] = n
		if status == "QUEUED" {
			s.OldestQueuedAge = time.Duration(age * float64(time.Second))
		}
	}
	return s, rows.Err()
}
