#!/bin/sh
# Load test of the GraphQL read API (issue 2): the query
#   member(id) { claims(first: 50) { …every scalar field… lines { … } } }
# over real HTTP on loopback, 8 concurrent keep-alive clients, reporting
# requests per second and p50/p90/p99 latency.
#
#   scripts/loadtest-graphql.sh                 in-process (default)
#   CLIENTS=16 DURATION=30s scripts/loadtest-graphql.sh
#   URL=http://127.0.0.1:8080/graphql TOKEN=… MEMBER=… scripts/loadtest-graphql.sh
#                                              against a running gateway
#
# In-process mode (until the gateway issues tokens to itself): the test
# BenchmarkGraphQLLoad in server/ seeds 200 members × 50 claims × 2 lines into a
# fresh test database, serves the real GraphQL handler behind the request-id,
# logging and recovery middleware on an httptest loopback listener (an
# operator principal stands in for the bearer-token middleware), and runs
# internal/loadgen against it. Server, PostgreSQL and load generator share
# the machine; GOGC and GOMAXPROCS pass through to the server process.
set -eu
cd "$(dirname "$0")/.."
if [ -n "${URL:-}" ]; then
	exec go run ./internal/loadgen/cmd/graphql-load -url "$URL" -token "${TOKEN:-}" \
		-member "${MEMBER:?MEMBER (a member id) is required with URL}" \
		-c "${CLIENTS:-8}" -d "${DURATION:-15s}"
fi
GRAPHQL_LOADTEST_CLIENTS="${CLIENTS:-8}" GRAPHQL_LOADTEST_DURATION="${DURATION:-15s}" \
	go test ./server -run XXX -bench '^BenchmarkGraphQLLoad$' -benchtime 1x -count=1 -v | grep -E '^(RESULT|--- |ok|FAIL)'
