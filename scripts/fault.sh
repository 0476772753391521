#!/bin/sh
# Fault test, long version (issue 7; the short one is
# TestPostgresRestartFailsFastAndRecovers in server/fault_test.go).
#
# Runs the gateway (DEV_MODE, seeded sandbox) on a PostgreSQL of its own,
# started here straight from the server binaries (no pg_ctl), drives a load
# of GraphQL queries (operator token from /dev/token) and refused token
# requests with CLIENTS curl loops for DURATION seconds, kills PostgreSQL
# (SIGQUIT to the postmaster: immediate shutdown, as a crash) at RESTART_AT,
# starts it again DOWN_FOR seconds later, and reports the answers by status,
# any 5xx other than 503, and the recovery time (restart → first successful
# GraphQL answer; the issue requires ≤ 5 s).
#
#   scripts/fault.sh
#   DURATION=60 RESTART_AT=20 DOWN_FOR=3 CLIENTS=8 PORT=8089 scripts/fault.sh
#
# Needs the PostgreSQL server binaries, curl and GNU date; as root it runs
# PostgreSQL as the postgres OS user (runuser).
set -eu
cd "$(dirname "$0")/.."
DURATION=${DURATION:-60} RESTART_AT=${RESTART_AT:-20} DOWN_FOR=${DOWN_FOR:-3}
CLIENTS=${CLIENTS:-8} PORT=${PORT:-8089}
base=http://127.0.0.1:$PORT
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$bin/postgres" ] || bin=$(pg_config --bindir)
work=$(mktemp -d /dev/shm/gateway-fault.XXXXXX 2>/dev/null || mktemp -d)
chmod 755 "$work"
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
ms() { date +%s%3N; }
pg_pid() { head -1 "$work/data/postmaster.pid"; }
start_pg() {
	as_pg "$bin/postgres" -D "$work/data" -k "$work" -c listen_addresses= -c fsync=off >>"$work/pg.log" 2>&1 &
	pg=$!
	until "$bin/pg_isready" -q -h "$work"; do
		kill -0 $pg 2>/dev/null || { tail -5 "$work/pg.log"; exit 1; }
		sleep 0.05
	done
}
gw=
cleanup() {
	[ -n "$gw" ] && kill "$gw" 2>/dev/null && wait "$gw" 2>/dev/null || true
	[ -f "$work/data/postmaster.pid" ] && kill -INT "$(pg_pid)" 2>/dev/null && sleep 1 || true
	rm -rf "$work"
}
trap cleanup EXIT INT TERM

mkdir "$work/data"
if [ "$(id -u)" = 0 ]; then chown postgres "$work" "$work/data"; fi
as_pg "$bin/initdb" -D "$work/data" -U postgres --auth=trust --locale=C --no-instructions >/dev/null
start_pg
go build -o "$work/gateway" .
DATABASE_URL="postgres://postgres@/postgres?host=$work&sslmode=disable" DEV_MODE=true \
	LISTEN_ADDR=127.0.0.1:$PORT PUBLIC_URL=$base EXPORT_DIR="$work/exports" LOG_LEVEL=warn \
	"$work/gateway" serve 2>"$work/gateway.log" &
gw=$!
until curl -sf "$base/readyz" >/dev/null; do sleep 0.2; done
token=$(curl -sf -d email=operator@example.test "$base/dev/token" | sed 's/.*"access_token":"\([^"]*\)".*/\1/')

end=$(( $(ms) + DURATION * 1000 ))
load() { # $1: output file of "ms kind status ok|err"
	while [ "$(ms)" -lt "$end" ]; do
		out=$(curl -s --max-time 10 -w ' %{http_code}' -H "Authorization: Bearer $token" \
			-H 'Content-Type: application/json' -d '{"query":"{ importRuns(first: 1) { totalCount } }"}' "$base/graphql") || true
		ok=ok; case $out in *'"errors"'*|'') ok=err ;; esac
		echo "$(ms) graphql ${out##* } $ok" >>"$1"
		code=$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' -u nobody:wrong \
			-d grant_type=client_credentials "$base/oauth/token") || true
		echo "$(ms) token $code -" >>"$1"
	done
}
i=0; while [ $i -lt "$CLIENTS" ]; do load "$work/load.$i" & i=$((i + 1)); done

sleep "$RESTART_AT"
killed=$(ms); kill -QUIT "$(pg_pid)"
while [ -f "$work/data/postmaster.pid" ] && kill -0 "$(pg_pid)" 2>/dev/null; do sleep 0.05; done
echo "PostgreSQL killed; /readyz: $(curl -s -o /dev/null -w '%{http_code}' "$base/readyz")"
sleep "$DOWN_FOR"
start_pg; restarted=$(ms)
echo "PostgreSQL restarted after $((restarted - killed)) ms down"
while [ "$(ms)" -lt "$end" ]; do sleep 1; done
sleep 11 # the last requests (curl --max-time 10)

cat "$work"/load.* | sort -n >"$work/all"
echo "answers by kind and status:"; awk '{print $2, $3}' "$work/all" | sort | uniq -c
bad=$(awk '$3 ~ /^5/ && $3 != 503' "$work/all" | wc -l)
hung=$(awk '$3 == "000"' "$work/all" | wc -l)
recovered=$(awk -v t="$restarted" '$1 >= t && $2 == "graphql" && $3 == 200 && $4 == "ok" {print $1 - t; exit}' "$work/all")
echo "5xx other than 503: $bad; no answer within 10 s: $hung; recovery: ${recovered:-never} ms after the restart"
[ "$bad" -eq 0 ] && [ "$hung" -eq 0 ] && [ -n "$recovered" ] && [ "$recovered" -le 5000 ]
