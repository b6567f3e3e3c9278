#!/usr/bin/env bash
# At bbaf1b0: `rawevents bench ingest --json` three times per backend, and
# BenchmarkCatchUp (with its floor-writes and floor-search) twice at the
# working tree's floor_test.go. Before each run: wait (at most 3 minutes)
# for the 1-minute load to fall to 1.5, sync, 5 s; load.txt records it.
# Binaries: go build -o $BIN/rawevents-B ./cmd/rawevents,
# go test -c -o $BIN/proj-F ./projection.
set -uo pipefail
out=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$out/../.." && pwd)
BIN=${BIN:-/tmp/bx}
PG='postgres://postgres@127.0.0.1:5432/test?sslmode=disable'
. "$(dirname "$0")/../lib.sh"
for i in 1 2 3; do
  wait_quiet "ingest-sqlite-$i"
  rm -f "$out/x.db"*
  "$BIN/rawevents-B" bench ingest --json --store "$out/x.db" > "$out/ingest-sqlite-$i.json"
  rm -f "$out/x.db"*
  wait_quiet "ingest-pg-$i"
  "$BIN/rawevents-B" bench ingest --json --store "$PG" > "$out/ingest-pg-$i.json"
done
cd "$repo/projection"
for i in 1 2; do
  wait_quiet "floor-$i"
  "$BIN/proj-F" -test.run '^$' -test.bench CatchUp -test.benchtime 2x -test.count 2 -test.timeout 60m > "$out/floor-$i.txt" 2>&1
done
