#!/usr/bin/env bash
# BenchmarkPipeline at 785d7cb, each backend in a process of its own
# (SQLite, then PostgreSQL, three times), so that neither measures while
# the page cache writes back the other's files (in one process the
# PostgreSQL sub-benchmarks ran right after SQLite's River run had written
# its 20,000 jobs: PostgreSQL append100 40k against 50-65k alone).
# Before each run: wait (at most 3 minutes) for the 1-minute load to fall
# to 1.5, sync, 5 s; load.txt records it.
# Binary: go test -c -o $BIN/domain-D ./domain. bench/9b65aae holds the same
# run at 9b65aae: OUT=bench/9b65aae bash bench/785d7cb/run.sh
set -uo pipefail
out=$(cd "${OUT:-$(dirname "$0")}" && pwd) # OUT: another directory for the results
repo=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${BIN:-/tmp/bx}
. "$(dirname "$0")/../lib.sh"
cd "$repo/domain"
for i in 1 2 3; do
  for be in SQLite Postgres; do
    wait_quiet "pipeline-$be-$i"
    "$BIN/domain-D" -test.run '^$' -test.bench "Pipeline/$be/" -test.benchtime 20000x -test.timeout 60m > "$out/pipeline-$be-$i.txt" 2>&1
  done
done
echo "done $(date -u +%H:%M:%S) $(uptime)" >> "$out/load.txt"
