#!/usr/bin/env bash
# rawevents bench ingest at ee23ff3, three times per backend, alternating;
# before each run: wait (at most 3 minutes) for the 1-minute load to fall
# to 1.5, sync, 5 s (load.txt). Binary: go build -o $BIN/rawevents-P ./cmd/rawevents
set -uo pipefail
out=$(cd "$(dirname "$0")" && pwd)
BIN=${BIN:-/tmp/bx}
PG='postgres://postgres@127.0.0.1:5432/test?sslmode=disable'
. "$(dirname "$0")/../lib.sh"
for i in 1 2 3; do
  wait_quiet "ingest-sqlite-$i"
  "$BIN/rawevents-P" bench ingest --json --store "$out/x.db" > "$out/ingest-sqlite-$i.json"
  wait_quiet "ingest-pg-$i"
  "$BIN/rawevents-P" bench ingest --json --store "$PG" > "$out/ingest-pg-$i.json"
done
echo "done $(date -u +%H:%M:%S) $(uptime)" >> "$out/load.txt"
