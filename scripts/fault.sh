#!/usr/bin/env bash
# Fault test, long version (issue 7; the short one is
# TestPostgresRestartFailsFastAndRecovers in server/fault_test.go): the load
# test of scripts/loadtest.sh with FAULT=1.
#
# Runs the gateway (DEV_MODE, MEMBERS seeded members) on a PostgreSQL of its
# own, drives vegeta's mix of provider dashboard GraphQL queries, token
# requests and bulk export kick-offs for DURATION, kills PostgreSQL (SIGQUIT
# to the postmaster: immediate shutdown, as a crash) at FAULT_AT seconds,
# starts it again DOWN_FOR seconds later, and checks:
#   - no 5xx other than 503, in vegeta's results and in the watcher's status
#     polls and downloads (GraphQL answers that report the outage as an
#     INTERNAL error in a 200 body are counted separately);
#   - recovery: the first successful GraphQL answer within 5 s of the restart;
#   - no export job lost or duplicated: every 202 kick-off is one job that
#     completes (or fails with a reason), and no job exists without a 202;
#   - no partially written file ever served: every file of every completed
#     job downloads, each line parses, counts match the manifest, no
#     resource twice; a running job's files answer 404;
#   - the audit rows equal the member reads of the answers, request by request.
# It also prints the answers by status during the outage.
#
#   scripts/fault.sh
#   MEMBERS=2000 DURATION=20s FAULT_AT=8 DOWN_FOR=3 scripts/fault.sh
#   PGDATA_DIR=/dev/shm/lt-100k scripts/fault.sh     reuse a seeded cluster (see scripts/loadtest.sh)
#
# Every knob of scripts/loadtest.sh applies (RATE, PORT, OUT…). The former
# names still work: DURATION in seconds, RESTART_AT for FAULT_AT.
set -euo pipefail
export FAULT=1
if [ -n "${RESTART_AT:-}" ] && [ -z "${FAULT_AT:-}" ]; then export FAULT_AT=$RESTART_AT; fi
exec "$(dirname "$0")/loadtest.sh" "$@"
