#!/usr/bin/env bash
# The measurements at 6dc5d79, one after another on an otherwise idle
# machine. Before each run: wait (at most 3 minutes) for the 1-minute load
# to fall to 1.5, record `uptime` (load.txt), `sync` and 5 s.
#  1. `rawevents bench ingest`, A = 9265c6e (the dedup key merged, events
#     checked again by the committer), B = 6dc5d79 (checked on the
#     request's goroutine): SQLite A B B A A B, PostgreSQL A B B A.
#  2. BenchmarkPipeline (domain), -count 3.
#  3. BenchmarkCatchUp (projection), -count 3.
#  4. BenchmarkQueryLoad (projection/internal/loadquery), 1,000,000 rows.
set -uo pipefail
out=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$out/../.." && pwd)
A=${A:-/tmp/b6/rawevents-A}
B=${B:-/tmp/b6/rawevents-B}
PG='postgres://postgres@127.0.0.1:5432/test?sslmode=disable'
. "$(dirname "$0")/../lib.sh"
ingest() { # name binary store
  wait_quiet "$1"
  rm -rf /tmp/b6/db && mkdir -p /tmp/b6/db
  "$2" bench ingest --json --store "$3" > "$out/$1.json"
}
if [ -z "${SKIP_INGEST:-}" ]; then
  i=0
  for x in A B B A A B; do i=$((i+1)); bin=$A; [ $x = B ] && bin=$B; ingest "ingest-sqlite-$i-$x" "$bin" /tmp/b6/db/bench.db; done
  i=0
  for x in A B B A; do i=$((i+1)); bin=$A; [ $x = B ] && bin=$B; ingest "ingest-pg-$i-$x" "$bin" "$PG"; done
fi
cd "$repo"
wait_quiet pipeline
go test -run '^$' -bench Pipeline -benchtime 20000x -count 3 -timeout 60m ./domain > "$out/pipeline.txt" 2>&1
wait_quiet catchup
go test -run '^$' -bench BenchmarkCatchUp -benchtime 2x -count 3 -timeout 30m ./projection/ > "$out/catchup.txt" 2>&1
wait_quiet queryload
go test -run '^$' -bench BenchmarkQueryLoad -benchtime 1x -count 3 -timeout 90m ./projection/internal/loadquery/ > "$out/queryload.txt" 2>&1
echo "done $(date -u +%H:%M:%S) $(uptime)" >> "$out/load.txt"
