#!/usr/bin/env bash
# BenchmarkPipeline at 9b65aae, each backend in a process of its own
# (SQLite, then PostgreSQL, three times), so that neither measures while
# the page cache writes back the other's files (in one process the
# PostgreSQL sub-benchmarks ran right after SQLite's River run had written
# its 20,000 jobs: PostgreSQL append100 40k against 50-65k alone).
# Before each run: wait (at most 3 minutes) for the 1-minute load to fall
# to 1.5, sync, 5 s; load.txt records it.
# Binary: go test -c -o $BIN/domain-D ./domain
set -uo pipefail
out=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$out/../.." && pwd)
BIN=${BIN:-/tmp/bx}
wait_quiet() {
  for _ in $(seq 1 36); do
    awk '{exit !($1 <= 1.5)}' /proc/loadavg && break
    sleep 5
  done
  sync; sleep 5
  echo "$1 $(date -u +%H:%M:%S) $(uptime)" >> "$out/load.txt"
}
cd "$repo/domain"
for i in 1 2 3; do
  for be in SQLite Postgres; do
    wait_quiet "pipeline-$be-$i"
    "$BIN/domain-D" -test.run '^$' -test.bench "Pipeline/$be/" -test.benchtime 20000x -test.timeout 60m > "$out/pipeline-$be-$i.txt" 2>&1
  done
done
echo "done $(date -u +%H:%M:%S) $(uptime)" >> "$out/load.txt"
