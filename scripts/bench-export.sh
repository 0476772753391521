#!/usr/bin/env bash
# Benchmark of the bulk export (FHIR Bulk Data) on a large seeded group,
# with the raw COPY rate of the same claim rows and a minimal streamer as
# the yardstick, measured in the same run (see BenchmarkExport in
# export/bench_test.go for what each number means).
#
#   scripts/bench-export.sh            # 12,000 members: about 110,000 claims as ExplanationOfBenefit
#   scripts/bench-export.sh 50000      # any size; peak RSS stays flat
#
# It uses TEST_DATABASE_URL when set, else a private PostgreSQL on tmpfs.
# Set EXPORT_BENCH_CPUPROFILE=/tmp/bench for CPU profiles of both processes.
set -euo pipefail
cd "$(dirname "$0")/.."
EXPORT_BENCH_MEMBERS="${1:-12000}" exec go test ./export -run '^$' -bench '^BenchmarkExport$' -benchtime 1x -timeout 60m -v
