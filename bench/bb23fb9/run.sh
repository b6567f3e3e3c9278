#!/usr/bin/env bash
# A/B of `rawevents bench ingest`: A is main before the dedup key (307c202),
# B this branch. Rounds alternate A and B on SQLite, then on PostgreSQL.
# Before each run: wait (at most 3 minutes) for the 1-minute load to fall
# to 1.5, and record `uptime`; `vmstat 2` runs beside each run.
set -euo pipefail
out=$(dirname "$0")
A=${A:-/tmp/dedupbench/rawevents-A}
B=${B:-/tmp/dedupbench/rawevents-B}
PG='postgres://postgres@127.0.0.1:5432/test?sslmode=disable'
rounds=${ROUNDS:-3}
wait_quiet() {
  for _ in $(seq 1 36); do
    awk '{exit !($1 <= 1.5)}' /proc/loadavg && return
    sleep 5
  done
}
run() { # name binary store
  wait_quiet
  echo "$1 $(date -u +%H:%M:%S) $(uptime)" >> "$out/load.txt"
  rm -rf /tmp/dedupbench/db && mkdir -p /tmp/dedupbench/db
  vmstat 2 > "$out/$1.vmstat" &
  local vm=$!
  "$2" bench ingest --json --store "$3" > "$out/$1.json"
  kill "$vm"
}
if [ "${ORDER:-}" = BA-PG ]; then
  # Rounds 4 and 5 on PostgreSQL, the same way.
  for r in $(seq 4 5); do
    sync; sleep 5; run "pg-B-$r" "$B" "$PG"
    sync; sleep 5; run "pg-A-$r" "$A" "$PG"
  done
  exit 0
fi
if [ "${ORDER:-}" = BA ]; then
  # Rounds 4 and 5, SQLite only: B before A, each run after `sync` and 5
  # s, so that neither follows the other's writeback (see BENCHMARKS.md).
  for r in $(seq 4 5); do
    sync; sleep 5; run "sqlite-B-$r" "$B" /tmp/dedupbench/db/bench.db
    sync; sleep 5; run "sqlite-A-$r" "$A" /tmp/dedupbench/db/bench.db
  done
  exit 0
fi
for r in $(seq 1 "$rounds"); do
  run "sqlite-A-$r" "$A" /tmp/dedupbench/db/bench.db
  run "sqlite-B-$r" "$B" /tmp/dedupbench/db/bench.db
  run "pg-A-$r" "$A" "$PG"
  run "pg-B-$r" "$B" "$PG"
done
