#!/usr/bin/env bash
# Measures `gateway import` (issue 6): ExplanationOfBenefit resources per
# second, attribution CSV rows per second, and peak RSS on a large file,
# with, in the same run, a raw COPY FROM of the same rows into unindexed
# tables for scale.
#
#   scripts/bench-import.sh [MEMBERS] [CSV_ROWS]
#
# MEMBERS (default 10500) synthetic members from the sandbox generator,
# mapped to FHIR R4 with package fhir, money included: about 11 claims and
# prior authorizations each, ~95 KB of NDJSON per member (10500 ≈ 1 GB).
# CSV_ROWS (default 1000000) attribution rows.
#
# The database is BENCH_DATABASE_URL when set (it must be empty: the script
# loads into it), else a throwaway PostgreSQL cluster under /dev/shm (or
# TMPDIR) started from the machine's binaries and stopped at the end. Files
# go to BENCH_DIR [a temporary directory, removed at the end].
set -euo pipefail

MEMBERS=${1:-10500}
CSV_ROWS=${2:-1000000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/bench-import.XXXXXX")
DIR=${BENCH_DIR:-$WORK/files}
mkdir -p "$DIR"
PGPID=""

cleanup() {
  if [ -n "$PGPID" ]; then kill "$PGPID" 2>/dev/null || true; wait "$PGPID" 2>/dev/null || true; fi
  rm -rf "$WORK"
  [ -n "${PGDATA_DIR:-}" ] && rm -rf "$PGDATA_DIR"
}
trap cleanup EXIT

now() { date +%s.%N; }
# pgcpu: CPU seconds used so far by the throwaway cluster (its postmaster,
# its live processes and those that exited); "" with BENCH_DATABASE_URL.
pgcpu() {
  [ -n "$PGPID" ] || return 0
  local pm
  pm=$(head -1 "$PGDATA_DIR/data/postmaster.pid")
  { awk '{ print $14 + $15 + $16 + $17 }' "/proc/$pm/stat"
    for c in $(pgrep -P "$pm"); do awk '{ print $14 + $15 }' "/proc/$c/stat" 2>/dev/null; done
  } | awk -v hz="$(getconf CLK_TCK)" '{ s += $1 } END { printf "%.2f", s / hz }'
}
pgdelta() { [ -n "$1" ] && awk -v a="$1" -v b="$2" 'BEGIN { printf "; PostgreSQL CPU %.2f s", b - a }'; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", n / s }'; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

# --- database -----------------------------------------------------------
if [ -n "${BENCH_DATABASE_URL:-}" ]; then
  export DATABASE_URL=$BENCH_DATABASE_URL
else
  BIN=$(pg_config --bindir 2>/dev/null || true)
  [ -x "$BIN/postgres" ] || BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [ -x "$BIN/postgres" ] || { echo "no PostgreSQL server binaries: apt-get install postgresql, or set BENCH_DATABASE_URL" >&2; exit 1; }
  base=/dev/shm; [ -w /dev/shm ] || base=${TMPDIR:-/tmp}
  PGDATA_DIR=$(mktemp -d "$base/bench-import-pg.XXXXXX")
  chmod 755 "$PGDATA_DIR"
  as=()
  if [ "$(id -u)" = 0 ]; then chown postgres "$PGDATA_DIR"; as=(runuser -u postgres --); fi
  "${as[@]}" "$BIN/initdb" -D "$PGDATA_DIR/data" -A trust -U postgres >/dev/null
  # Settings of a modest server: WAL on, fsync off only because the
  # cluster lives on tmpfs and is thrown away.
  "${as[@]}" "$BIN/postgres" -D "$PGDATA_DIR/data" -k "$PGDATA_DIR" -c listen_addresses= \
    -c shared_buffers=256MB -c max_wal_size=4GB -c fsync=off -c synchronous_commit=off \
    >"$PGDATA_DIR/log" 2>&1 &
  PGPID=$!
  for _ in $(seq 50); do [ -S "$PGDATA_DIR/.s.PGSQL.5432" ] && break; sleep 0.1; done
  psql -h "$PGDATA_DIR" -U postgres -qc "CREATE DATABASE bench" postgres
  export DATABASE_URL="postgres://postgres@/bench?host=$PGDATA_DIR&sslmode=disable"
fi
PSQL=(psql "$DATABASE_URL" -qAtX -v ON_ERROR_STOP=1)

# --- build and generate -------------------------------------------------
cd "$ROOT"
go build -o "$WORK/gateway" .
go build -o "$WORK/generate" ./scripts/bench-import
echo "generating $MEMBERS members, $CSV_ROWS attribution rows in $DIR"
"$WORK/generate" -members "$MEMBERS" -csv-rows "$CSV_ROWS" -out "$DIR"
ls -l "$DIR" | awk 'NR > 1 { printf "  %-20s %8.1f MB\n", $9, $5 / 1e6 }'
echo "machine: $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), load average $(cut -d' ' -f1-3 /proc/loadavg)"

GW=("$WORK/gateway" import)
"$WORK/gateway" migrate 2>/dev/null

# --- providers and members ----------------------------------------------
t0=$(now)
"${GW[@]}" --kind fhir "$DIR/providers.ndjson" "$DIR/members.ndjson" 2>/dev/null | tail -1
t1=$(now)
n=$(cat "$DIR/providers.ndjson" "$DIR/members.ndjson" | wc -l)
echo "providers + members: $n resources in $(secs "$t0" "$t1") s = $(rate "$n" "$(secs "$t0" "$t1")")/s"

# --- ExplanationOfBenefit -------------------------------------------------
eobs=$(wc -l <"$DIR/eob.ndjson")
size=$(stat -c %s "$DIR/eob.ndjson")
t0=$(now); p0=$(pgcpu)
/usr/bin/time -v "${GW[@]}" --kind fhir "$DIR/eob.ndjson" 2>"$WORK/time.txt" >"$WORK/out.txt"
t1=$(now); p1=$(pgcpu)
tail -2 "$WORK/out.txt" | head -1
rows=$("${PSQL[@]}" -c "SELECT (SELECT count(*) FROM claims) + (SELECT count(*) FROM claim_lines)
  + (SELECT count(*) FROM claim_diagnoses) + (SELECT count(*) FROM claim_procedures)
  + (SELECT count(*) FROM prior_authorizations) + (SELECT count(*) FROM prior_authorization_items)")
rss=$(awk '/Maximum resident/ { printf "%.0f", $6 / 1024 }' "$WORK/time.txt")
cpu=$(awk -F': ' '/User time/ { u = $2 } /System time/ { s = $2 } END { printf "%.2f", u + s }' "$WORK/time.txt")
el=$(secs "$t0" "$t1")
echo "ExplanationOfBenefit: $eobs resources ($(awk -v s="$size" 'BEGIN { printf "%.0f MB", s / 1e6 }'), $rows rows) in $el s" \
  "= $(rate "$eobs" "$el") EOB/s, $(rate "$rows" "$el") rows/s; peak RSS $rss MiB; import CPU $cpu s$(pgdelta "$p0" "$p1")"

t0=$(now)
"${GW[@]}" --kind fhir "$DIR/eob.ndjson" 2>/dev/null | tail -1
t1=$(now)
echo "ExplanationOfBenefit again (all unchanged): $(secs "$t0" "$t1") s = $(rate "$eobs" "$(secs "$t0" "$t1")") EOB/s"

# --- attribution CSV -------------------------------------------------------
t0=$(now); p0=$(pgcpu)
/usr/bin/time -v "${GW[@]}" --kind attribution "$DIR/attribution.csv" 2>"$WORK/time.txt" | tail -1
t1=$(now); p1=$(pgcpu)
rss=$(awk '/Maximum resident/ { printf "%.0f", $6 / 1024 }' "$WORK/time.txt")
cpu=$(awk -F': ' '/User time/ { u = $2 } /System time/ { s = $2 } END { printf "%.2f", u + s }' "$WORK/time.txt")
el=$(secs "$t0" "$t1")
echo "attribution CSV: $CSV_ROWS rows in $el s = $(rate "$CSV_ROWS" "$el") rows/s; peak RSS $rss MiB; import CPU $cpu s$(pgdelta "$p0" "$p1")"

# --- raw COPY FROM of the same rows, into unindexed tables ----------------
"${PSQL[@]}" <<SQL
\copy (SELECT * FROM claims) TO '$WORK/claims.copy'
\copy (SELECT * FROM claim_lines) TO '$WORK/claim_lines.copy'
\copy (SELECT * FROM claim_diagnoses) TO '$WORK/claim_diagnoses.copy'
\copy (SELECT * FROM claim_procedures) TO '$WORK/claim_procedures.copy'
\copy (SELECT * FROM prior_authorizations) TO '$WORK/prior_authorizations.copy'
\copy (SELECT * FROM prior_authorization_items) TO '$WORK/prior_authorization_items.copy'
CREATE TABLE raw_claims (LIKE claims); CREATE TABLE raw_claim_lines (LIKE claim_lines);
CREATE TABLE raw_claim_diagnoses (LIKE claim_diagnoses); CREATE TABLE raw_claim_procedures (LIKE claim_procedures);
CREATE TABLE raw_prior_authorizations (LIKE prior_authorizations);
CREATE TABLE raw_prior_authorization_items (LIKE prior_authorization_items);
CREATE TABLE raw_attribution (member_identifier text, organization_npi text, practitioner_npi text,
  period_start date, period_end date);
SQL
t0=$(now)
"${PSQL[@]}" <<SQL
\copy raw_claims FROM '$WORK/claims.copy'
\copy raw_claim_lines FROM '$WORK/claim_lines.copy'
\copy raw_claim_diagnoses FROM '$WORK/claim_diagnoses.copy'
\copy raw_claim_procedures FROM '$WORK/claim_procedures.copy'
\copy raw_prior_authorizations FROM '$WORK/prior_authorizations.copy'
\copy raw_prior_authorization_items FROM '$WORK/prior_authorization_items.copy'
SQL
t1=$(now)
el=$(secs "$t0" "$t1")
echo "raw COPY FROM, the same $rows rows into unindexed tables: $el s = $(rate "$rows" "$el") rows/s ($(rate "$eobs" "$el") EOB/s)"
t0=$(now)
"${PSQL[@]}" -c "\copy raw_attribution FROM '$DIR/attribution.csv' WITH (FORMAT csv, HEADER true)"
t1=$(now)
el=$(secs "$t0" "$t1")
echo "raw COPY FROM, the attribution CSV into an unindexed table: $el s = $(rate "$CSV_ROWS" "$el") rows/s"
