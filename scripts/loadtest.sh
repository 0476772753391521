#!/usr/bin/env bash
# Load test of the whole gateway (issue 7), and with FAULT=1 its fault test.
#
# Starts a PostgreSQL of its own (initdb on /dev/shm, fsync off, run straight
# from the server binaries so that it can be killed and restarted), builds
# the gateway, seeds MEMBERS synthetic members (`gateway seed`), serves the
# gateway on loopback in DEV_MODE, and runs vegeta (github.com/tsenart/vegeta,
# MIT) at RATE requests per second for DURATION with a mix of
#   - provider dashboard GraphQL queries (member search by name, look-up by
#     identifier, a member's claims with lines, encounters, prior
#     authorizations, a chart summary, a panel with recent claims), from
#     CLIENTS_PER_ORG Provider Access clients in each of DASH_ORGS synthetic
#     organizations (thousands of attributed members each at 100,000);
#   - token requests (client_credentials, client_secret_basic), TOKEN_RATE/s;
#   - bulk export kick-offs, EXPORT_RATE/s: group, typed and Patient/$export
#     exports of EXPORT_ORGS organizations registered through the portal, and
#     $davinci-data-export of three members of a synthetic organization.
# The callers are made through the gateway's own API (scripts/loadtest:
# setup): the operator invites a person into each synthetic organization,
# who creates sandbox clients; other people register organizations.
#
# Then scripts/loadtest (check) reports, per kind and operation, throughput,
# p50/p90/p99 latency and error rate (non-2xx except the export limit's 429,
# and GraphQL answers with errors), and checks that the audit rows equal the
# member reads the answers returned, request by request (the load's
# X-Request-Id is the rows' request_id). A watcher polls every export job
# while the load runs, downloads each completed job's files and reads every
# line; check reports jobs lost or duplicated and any bad file.
#
# FAULT=1 kills PostgreSQL (SIGQUIT to the postmaster: immediate shutdown, as
# a crash) FAULT_AT seconds into the load and starts it again DOWN_FOR
# seconds later; check then also requires no 5xx other than 503, the first
# successful GraphQL answer within 5 s of the restart, and the export checks
# above (no job lost or duplicated, no partial file ever served).
#
#   scripts/loadtest.sh                                  100,000 members, 60 s at 100 req/s
#   FAULT=1 scripts/loadtest.sh                          the same with the PostgreSQL restart (= scripts/fault.sh)
#   MEMBERS=2000 DURATION=10s scripts/loadtest.sh        a quick run
#   PGDATA_DIR=/dev/shm/lt-100k scripts/loadtest.sh      keep the seeded cluster there and reuse it next time
#   OUT=/tmp/lt scripts/loadtest.sh                      keep the reports, results and logs in /tmp/lt
#
# Knobs (defaults in brackets):
#   MEMBERS [100000], SEED [1]     the seeded data set
#   DURATION [60s]                 at most 4m: the load's tokens live 5 minutes
#   RATE [100]                     requests per second, all kinds (2 cores sustain ~110 with this mix)
#   TOKEN_RATE [RATE/10], EXPORT_RATE [2]   of which token requests, export kick-offs
#   GRAPHQL_MIX                    weights of the GraphQL operations [MemberSearch=22,
#                                  MemberLookup=8, MemberClaims=24, MemberEncounters=14,
#                                  MemberPriorAuthorizations=12, MemberChart=12,
#                                  PanelRecentClaims=8]; e.g. MemberSearch=0,PanelRecentClaims=0
#   DASH_ORGS [8], CLIENTS_PER_ORG [2]   dashboard clients (the gateway allows each 50 req/s)
#   EXPORT_ORGS [4]                registered organizations with an export client
#   MAX_WORKERS [1000], TIMEOUT [30s]    vegeta -max-workers, -timeout
#   FAULT [0], FAULT_AT [DURATION/3], DOWN_FOR [3]   the PostgreSQL restart
#   PORT [8089]
#   PG_OPTIONS                     [none] more PostgreSQL settings, e.g. "-c jit=off"
#   PGDATA_DIR                     [a fresh cluster in the work directory] a directory
#                                  to keep the cluster in and reuse (reseeded only when
#                                  its member count differs); the postgres user must
#                                  reach it (e.g. under /dev/shm)
#   EXPORT_WAIT [300s]             for export jobs still running after the load
#   OUT                            [none] a directory for the reports, results and logs
#   VEGETA                         [built once into ~/.cache/gateway-loadtest]
#   GATEWAY_REF                    [the working tree] a git commit to build the gateway from
#   KEEP_WORK [0]                  keep the work directory
# Other variables reach the gateway (DB_MAX_CONNS, EXPORT_WORKERS, GOMAXPROCS…).
#
# Needs Go, the PostgreSQL server binaries and GNU date; as root it runs
# PostgreSQL as the postgres OS user (runuser). Exit status 1 when a check
# fails.
set -euo pipefail
cd "$(dirname "$0")/.."

MEMBERS=${MEMBERS:-100000} SEED=${SEED:-1}
DURATION=${DURATION:-60s}
[[ $DURATION =~ ^[0-9]+$ ]] && DURATION=${DURATION}s
RATE=${RATE:-100} TOKEN_RATE=${TOKEN_RATE:-$((RATE / 10))} EXPORT_RATE=${EXPORT_RATE:-2}
MAX_WORKERS=${MAX_WORKERS:-1000} TIMEOUT=${TIMEOUT:-30s}
DASH_ORGS=${DASH_ORGS:-8} CLIENTS_PER_ORG=${CLIENTS_PER_ORG:-2} EXPORT_ORGS=${EXPORT_ORGS:-4}
FAULT=${FAULT:-0} DOWN_FOR=${DOWN_FOR:-3} PORT=${PORT:-8089}
PGDATA_DIR=${PGDATA_DIR:-} EXPORT_WAIT=${EXPORT_WAIT:-300s} OUT=${OUT:-} KEEP_WORK=${KEEP_WORK:-0}

seconds() { # a Go duration of whole seconds or minutes → seconds
	case $1 in
	*m) echo $((${1%m} * 60)) ;;
	*s) echo "${1%s}" ;;
	*) echo "$1" ;;
	esac
}
duration_s=$(seconds "$DURATION")
[[ $duration_s =~ ^[0-9]+$ ]] || { echo "DURATION: use whole seconds or minutes (60s, 2m)" >&2; exit 2; }
FAULT_AT=${FAULT_AT:-$((duration_s / 3))}
if [ "$FAULT" = 1 ] && [ $((FAULT_AT + DOWN_FOR + 5)) -gt "$duration_s" ]; then
	echo "FAULT_AT + DOWN_FOR must leave at least 5 s of the load after the restart" >&2
	exit 2
fi

base=http://127.0.0.1:$PORT
bin=$(pg_config --bindir 2>/dev/null || true)
[ -x "$bin/postgres" ] || bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$bin/postgres" ] || { echo "no PostgreSQL server binaries: apt-get install postgresql" >&2; exit 2; }
work=$(mktemp -d /dev/shm/gateway-loadtest.XXXXXX 2>/dev/null || mktemp -d)
chmod 755 "$work"
data=${PGDATA_DIR:-$work/data}
dsn="postgres://postgres@/postgres?host=$work&sslmode=disable"
root=false
[ "$(id -u)" = 0 ] && root=true
as_pg() { if $root; then runuser -u postgres -- "$@"; else "$@"; fi; }
ms() { date +%s%3N; }
pg_pid() { head -1 "$data/postmaster.pid" 2>/dev/null; }
log() { echo "[$(date -u +%H:%M:%S)] $*"; }

gw='' watch='' attack=''
cleanup() {
	set +e
	for p in $attack $watch; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
	[ -n "$gw" ] && kill "$gw" 2>/dev/null && wait "$gw" 2>/dev/null
	if p=$(pg_pid) && [ -n "$p" ] && kill -INT "$p" 2>/dev/null; then
		while kill -0 "$p" 2>/dev/null; do sleep 0.1; done
	fi
	if [ "$KEEP_WORK" = 1 ]; then echo "work directory kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_pg() {
	# shellcheck disable=SC2086 # PG_OPTIONS is a list of options
	as_pg "$bin/postgres" -D "$data" -k "$work" -c listen_addresses= -c fsync=off \
		-c full_page_writes=off ${PG_OPTIONS:-} >>"$work/postgres.log" 2>&1 &
	local pg=$!
	until "$bin/pg_isready" -q -h "$work"; do
		kill -0 "$pg" 2>/dev/null || { tail -5 "$work/postgres.log"; exit 1; }
		sleep 0.05
	done
}

if $root; then chown postgres "$work"; fi
if [ ! -f "$data/PG_VERSION" ]; then
	mkdir -p "$data"
	if $root; then chown postgres "$data"; fi
	as_pg "$bin/initdb" -D "$data" -U postgres --auth=trust --locale=C --no-instructions >/dev/null
fi
start_pg
log "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on $data"

log "building the gateway, scripts/loadtest and vegeta"
if [ -n "${GATEWAY_REF:-}" ]; then # a commit rather than the working tree
	mkdir "$work/src"
	git archive "$GATEWAY_REF" | tar -x -C "$work/src"
	(cd "$work/src" && go build -o "$work/gateway" .)
	log "gateway built from $GATEWAY_REF ($(git rev-parse --short "$GATEWAY_REF"))"
else
	go build -o "$work/gateway" .
	log "gateway built from the working tree at $(git rev-parse --short HEAD 2>/dev/null || echo ?)$(git diff --quiet HEAD -- 2>/dev/null || echo ' with local changes')"
fi
go build -o "$work/loadtest" ./scripts/loadtest
if [ -z "${VEGETA:-}" ]; then
	cache=${XDG_CACHE_HOME:-$HOME/.cache}/gateway-loadtest/vegeta-v12.13.0
	VEGETA=$cache/vegeta
	[ -x "$VEGETA" ] || GOBIN=$cache go install github.com/tsenart/vegeta/v12@v12.13.0
fi

have=$("$bin/psql" -h "$work" -U postgres -Atqc 'SELECT count(*) FROM members WHERE sandbox' 2>/dev/null || echo 0)
if [ "$have" != "$MEMBERS" ]; then
	log "seeding $MEMBERS members (the database has $have)"
	DATABASE_URL=$dsn LOG_LEVEL=warn "$work/gateway" seed --members "$MEMBERS" --seed "$SEED"
else
	log "reusing the $have seeded members in $data"
fi

DATABASE_URL=$dsn DEV_MODE=true LISTEN_ADDR=127.0.0.1:$PORT PUBLIC_URL=$base \
	EXPORT_DIR="$work/exports" LOG_LEVEL=${LOG_LEVEL:-warn} "$work/gateway" serve >"$work/gateway.log" 2>&1 &
gw=$!
for _ in $(seq 300); do
	curl -sf "$base/readyz" >/dev/null && break
	kill -0 "$gw" 2>/dev/null || { tail -20 "$work/gateway.log"; exit 1; }
	sleep 0.2
done
log "gateway $(curl -sf "$base/readyz") at $base"

"$work/loadtest" setup -url "$base" -dsn "$dsn" -dir "$work" -members "$MEMBERS" \
	-dash-orgs "$DASH_ORGS" -clients-per-org "$CLIENTS_PER_ORG" -export-orgs "$EXPORT_ORGS" \
	-rate "$RATE" -token-rate "$TOKEN_RATE" -export-rate "$EXPORT_RATE" -duration "$DURATION" \
	-graphql-mix "${GRAPHQL_MIX:-}"

# A checkpoint now keeps the restart's crash recovery short (FAULT=1): the
# test is of the gateway's recovery, not of PostgreSQL replaying the seed.
"$bin/psql" -h "$work" -U postgres -Atqc CHECKPOINT

"$work/loadtest" watch -dir "$work" -wait "$EXPORT_WAIT" 2>"$work/watch.log" &
watch=$!
log "vegeta attack -rate $RATE -duration $DURATION -max-workers $MAX_WORKERS (load average $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs)"
"$VEGETA" attack -format=json -targets="$work/targets.json" -rate="$RATE" -duration="$DURATION" \
	-max-workers="$MAX_WORKERS" -timeout="$TIMEOUT" -output="$work/results.bin" &
attack=$!
fault=()
if [ "$FAULT" = 1 ]; then
	sleep "$FAULT_AT"
	echo "killed $(ms)" >"$work/fault.times"
	p=$(pg_pid)
	kill -QUIT "$p"
	while kill -0 "$p" 2>/dev/null; do sleep 0.02; done
	echo "down $(ms)" >>"$work/fault.times"
	log "PostgreSQL killed (SIGQUIT); /readyz answers $(curl -s -o /dev/null -w '%{http_code}' "$base/readyz")"
	sleep "$DOWN_FOR"
	echo "restarted $(ms)" >>"$work/fault.times"
	start_pg
	echo "ready $(ms)" >>"$work/fault.times"
	log "PostgreSQL started again"
	fault=(-fault "$work/fault.times")
fi
wait "$attack"
attack=''
touch "$work/attack.done"
log "load over; waiting for the export jobs (at most $EXPORT_WAIT)"
kill -0 "$gw" 2>/dev/null || { echo "the gateway died during the load" >&2; tail -20 "$work/gateway.log"; exit 1; }
wait "$watch"
watch=''

"$VEGETA" report "$work/results.bin" | tee "$work/vegeta-report.txt"
"$VEGETA" report -type=json -output="$work/vegeta-report.json" "$work/results.bin"
"$VEGETA" report -type=hdrplot -output="$work/vegeta-hdrplot.txt" "$work/results.bin"
"$VEGETA" encode -to json -output="$work/results.json" "$work/results.bin"
echo
status=0
"$work/loadtest" check -dir "$work" -results "$work/results.json" -max-workers "$MAX_WORKERS" "${fault[@]}" || status=$?
errors=$(grep -c '"level":"ERROR"' "$work/gateway.log" || true)
echo "gateway log: $errors ERROR lines$([ "$errors" -gt 0 ] && echo ', first ones:')"
grep '"level":"ERROR"' "$work/gateway.log" | cut -c1-400 | head -5 || true

if [ -n "$OUT" ]; then
	mkdir -p "$OUT"
	cp "$work"/{report.txt,vegeta-report.txt,vegeta-report.json,vegeta-hdrplot.txt,results.bin,watch.json,watch.log,gateway.log,postgres.log} "$OUT"/
	[ -f "$work/fault.times" ] && cp "$work/fault.times" "$OUT"/
	log "reports, results and logs in $OUT"
fi
exit "$status"
