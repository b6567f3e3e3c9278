#!/usr/bin/env bash
# The measurements of this stop, one after another on an otherwise idle
# machine. A = 786189c (the stop's start), B = b714c75 (the page read
# ahead, indexes built in one pass once caught up, relevance ranking
# capped). Test binaries built beforehand from each commit:
#   go test -c -o $BIN/proj-X ./projection/; go test -c -o $BIN/domain-X ./domain/
#   go test -c -o $BIN/lq-B ./projection/internal/loadquery/; go build -o $BIN/rawevents-B ./cmd/rawevents
# Before each run: wait (at most 3 minutes) for the 1-minute load to fall
# to 1.5, record `uptime` (load.txt), `sync` and 5 s.
#  1. BenchmarkCatchUp, A B B A, -benchtime 2x -count 2 each.
#  2. BenchmarkPipeline, A B B A, -benchtime 20000x each.
#  3. `rawevents bench ingest` at B, SQLite three times, PostgreSQL three times.
#  4. BenchmarkQueryLoad at B, 1,000,000 rows, once.
set -uo pipefail
out=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$out/../.." && pwd)
BIN=${BIN:-/tmp/b7}
PG='postgres://postgres@127.0.0.1:5432/test?sslmode=disable'
. "$(dirname "$0")/../lib.sh"
cd "$repo/projection"
i=0
for x in A B B A; do
  i=$((i+1)); wait_quiet "catchup-$i-$x"
  "$BIN/proj-$x" -test.run '^$' -test.bench BenchmarkCatchUp -test.benchtime 2x -test.count 2 -test.timeout 30m > "$out/catchup-$i-$x.txt" 2>&1
done
cd "$repo/domain"
i=0
for x in A B B A; do
  i=$((i+1)); wait_quiet "pipeline-$i-$x"
  "$BIN/domain-$x" -test.run '^$' -test.bench Pipeline -test.benchtime 20000x -test.timeout 60m > "$out/pipeline-$i-$x.txt" 2>&1
done
for i in 1 2 3; do
  wait_quiet "ingest-sqlite-$i"
  rm -rf "$BIN/db" && mkdir -p "$BIN/db"
  "$BIN/rawevents-B" bench ingest --json --store "$BIN/db/bench.db" > "$out/ingest-sqlite-$i.json"
done
for i in 1 2 3; do
  wait_quiet "ingest-pg-$i"
  "$BIN/rawevents-B" bench ingest --json --store "$PG" > "$out/ingest-pg-$i.json"
done
cd "$repo/projection/internal/loadquery"
wait_quiet queryload
"$BIN/lq-B" -test.run '^$' -test.bench BenchmarkQueryLoad -test.benchtime 1x -test.timeout 90m > "$out/queryload.txt" 2>&1
echo "done $(date -u +%H:%M:%S) $(uptime)" >> "$out/load.txt"
