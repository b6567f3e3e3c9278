#!/usr/bin/env bash
# At the stop's end (H = 05dce24): BenchmarkPipeline three times, and
# `rawevents bench ingest` on PostgreSQL three times (two committers);
# load-gated as run.sh.
set -uo pipefail
out=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$out/../.." && pwd)
BIN=${BIN:-/tmp/b7}
PG='postgres://postgres@127.0.0.1:5432/test?sslmode=disable'
. "$(dirname "$0")/../lib.sh"
cd "$repo/domain"
for i in 1 2 3; do
  wait_quiet "pipeline4-$i-H"
  "$BIN/domain-H" -test.run '^$' -test.bench Pipeline -test.benchtime 20000x -test.timeout 60m > "$out/pipeline4-$i-H.txt" 2>&1
done
for i in 1 2 3; do
  wait_quiet "ingest-pg-H-$i"
  "$BIN/rawevents-H" bench ingest --json --store "$PG" > "$out/ingest-pg-H-$i.json"
done
echo "done4 $(date -u +%H:%M:%S) $(uptime)" >> "$out/load.txt"
