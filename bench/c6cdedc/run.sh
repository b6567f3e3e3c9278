#!/usr/bin/env bash
# A = d4a051f (encoding/json for stored metadata and raw envelopes),
# B = c6cdedc (the JSON v2 decoder for both): BenchmarkPipeline A B B A B;
# then at B `rawevents bench ingest` three times per backend and
# BenchmarkCatchUp twice. Before each run: wait (at most 3 minutes) for the
# 1-minute load to fall to 1.5, sync, 5 s; load.txt records it.
# Binaries: go test -c -o $BIN/domain-X ./domain (X = A, B),
# go test -c -o $BIN/proj-B ./projection, go build -o $BIN/rawevents-B ./cmd/rawevents.
set -uo pipefail
out=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$out/../.." && pwd)
BIN=${BIN:-/tmp/bx}
PG='postgres://postgres@127.0.0.1:5432/test?sslmode=disable'
. "$(dirname "$0")/../lib.sh"
cd "$repo/domain"
i=0
for v in A B B A B; do
  i=$((i + 1))
  wait_quiet "pipeline-$i-$v"
  "$BIN/domain-$v" -test.run '^$' -test.bench Pipeline -test.benchtime 20000x -test.timeout 60m > "$out/pipeline-$i-$v.txt" 2>&1
done
for i in 1 2 3; do
  wait_quiet "ingest-sqlite-$i"
  "$BIN/rawevents-B" bench ingest --json --store "$out/x.db" > "$out/ingest-sqlite-$i.json"
  wait_quiet "ingest-pg-$i"
  "$BIN/rawevents-B" bench ingest --json --store "$PG" > "$out/ingest-pg-$i.json"
done
cd "$repo/projection"
for i in 1 2; do
  wait_quiet "catchup-$i"
  "$BIN/proj-B" -test.run '^$' -test.bench BenchmarkCatchUp -test.benchtime 2x -test.count 2 -test.timeout 30m > "$out/catchup-$i.txt" 2>&1
done
echo "done $(date -u +%H:%M:%S) $(uptime)" >> "$out/load.txt"
