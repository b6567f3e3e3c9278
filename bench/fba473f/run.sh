#!/usr/bin/env bash
# rawevents bench ingest --json (all client counts) on SQLite at 48f92a6 (the
# code of fba473f), three times; before each run: wait (at most 3 minutes)
# for the 1-minute load to fall to 1.5, sync, 5 s (load.txt).
# Binary: go build -o $BIN/rawevents-Q ./cmd/rawevents
set -uo pipefail
out=$(cd "$(dirname "$0")" && pwd)
BIN=${BIN:-/tmp/bx}
. "$(dirname "$0")/../lib.sh"
for i in 1 2 3; do
  wait_quiet "ingest-sqlite-$i"
  "$BIN/rawevents-Q" bench ingest --json --store "$out/x.db" > "$out/ingest-sqlite-$i.json"
done
echo "done $(date -u +%H:%M:%S) $(uptime)" >> "$out/load.txt"
