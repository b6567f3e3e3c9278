#!/usr/bin/env bash
# A = 95ab8a0, B = bbaf1b0: `rawevents bench ingest --json --clients 64`
# on SQLite, A B B A B A, to tell this session's changes from the boot's
# (store 1/call 5.5k against 3.7-4.0k before, HTTP single 8.3-8.8k against
# 10-12k). Before each run: wait (at most 3 minutes) for the 1-minute load
# to fall to 1.5, sync, 5 s; load.txt records it.
# Binaries: go build -o $BIN/rawevents-X ./cmd/rawevents (X = A, B).
set -uo pipefail
out=$(cd "$(dirname "$0")" && pwd)
BIN=${BIN:-/tmp/bx}
. "$(dirname "$0")/../lib.sh"
i=0
for v in A B B A B A; do
  i=$((i + 1))
  wait_quiet "ingest-$i-$v"
  rm -f "$out/x.db"*
  "$BIN/rawevents-$v" bench ingest --json --clients 64 --store "$out/x.db" > "$out/ingest-$i-$v.json"
done
rm -f "$out/x.db"*
