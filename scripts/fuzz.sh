#!/usr/bin/env bash
# Runs every fuzz target of the gateway for FUZZTIME each (default 5m), at
# most JOBS at a time (default 2: one fuzz worker per target, so two
# targets keep two cores busy). Seeds in <pkg>/testdata/fuzz/<Target>/ run
# as ordinary tests in `go test ./...`; this is the long run for the
# closing note. A finding is written by Go to <pkg>/testdata/fuzz/<Target>/
# (commit it with the fix: it becomes a regression seed). Logs and the
# exec counts go to $OUT (default .data/fuzz). A target passes when Go
# wrote no failing input: see ok-deadline below.
#
#   scripts/fuzz.sh                         # all targets, 5 minutes each
#   FUZZTIME=30s scripts/fuzz.sh            # a quick pass
#   scripts/fuzz.sh ./auth FuzzVerifyBearer # one target
#
# The server targets need PostgreSQL like the tests (TEST_DATABASE_URL or
# the private cluster the test process starts).
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZTIME=${FUZZTIME:-5m}
JOBS=${JOBS:-2}
OUT=${OUT:-.data/fuzz}
mkdir -p "$OUT"

targets=(
  "./gateway FuzzValidNPI"
  "./gateway FuzzNormalizeTIN"
  "./export FuzzParseKickoff"
  "./export FuzzTypeFilter"
  "./auth FuzzVerifyAssertion"
  "./auth FuzzTokenEndpointAssertion"
  "./auth FuzzVerifyBearer"
  "./ingest FuzzFastDecoder"
  "./ingest FuzzReadAttributionCSV"
  "./ingest FuzzReadOptOutCSV"
  "./ingest FuzzReadFHIR"
  "./server FuzzGraphQLRequest"
  "./server FuzzGraphQLCursor"
)
if [ $# -eq 2 ]; then
  targets=("$1 $2")
fi

run() {
  local pkg=$1 name=$2 log="$OUT/$2.log" corpus="$1/testdata/fuzz/$2"
  local before after
  before=$(ls "$corpus" 2>/dev/null | wc -l)
  # -parallel 1: one fuzz worker per target; -run '^$': only the target.
  if go test "$pkg" -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" -parallel 1 >"$log" 2>&1; then
    status=ok
  else
    status=FAILED
  fi
  after=$(ls "$corpus" 2>/dev/null | wc -l)
  # Go 1.26's fuzz coordinator can report "context deadline exceeded" when
  # -fuzztime ends under CPU contention (golang/go#75804, fixed in Go 1.27):
  # a failure only when Go wrote a failing input to the corpus.
  if [ "$status" = FAILED ] && [ "$after" -eq "$before" ] && tail -5 "$log" | grep -q 'context deadline exceeded'; then
    status=ok-deadline
  fi
  execs=$(grep -o 'execs: [0-9]*' "$log" | tail -1 | awk '{print $2}')
  printf '%-28s %-12s %12s execs  %s\n' "$name" "$status" "${execs:-?}" "$log"
  [ "${status#ok}" != "$status" ]
}

fail=0
pids=()
for t in "${targets[@]}"; do
  # shellcheck disable=SC2086
  run $t &
  pids+=($!)
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do sleep 1; done
done
for p in "${pids[@]}"; do wait "$p" || fail=1; done
exit $fail
