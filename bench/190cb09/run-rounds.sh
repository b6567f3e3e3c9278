#!/bin/bash
# The runs of bench/190cb09/RESULTS.md, in order: per round, ingest on SQLite,
# ingest on PostgreSQL, then the pipeline benchmark (SQLite, then PostgreSQL).
# Before each run: wait until the 1-minute load is <= 1.5 (checks every 30 s,
# at most 10 minutes); the load at the start is logged to load.txt, and
# vmstat 2 records every run.
set -u
cd "$(dirname "$0")/../.."
OUT=bench/190cb09
BIN=/tmp/rawevents-remeasure
PG='postgres://postgres@127.0.0.1:5432/test?sslmode=disable'
go build -o $BIN ./cmd/rawevents || exit 1
go test -run '^$' -bench NONE ./domain >/dev/null || exit 1

quiet() {
  local waited=0
  while :; do
    l=$(awk '{print $1}' /proc/loadavg)
    if awk -v l="$l" 'BEGIN{exit !(l<=1.5)}'; then break; fi
    if [ $waited -ge 600 ]; then echo "  still loaded after 600 s" >>$OUT/load.txt; break; fi
    echo "  $(date -u +%T) load $l, waiting" >>$OUT/load.txt
    sleep 30; waited=$((waited+30))
  done
  echo "$1: start $(date -u +%T) uptime:$(uptime)" >>$OUT/load.txt
  ps -eo pcpu,comm --sort=-pcpu | sed -n 2,5p | sed 's/^/    /' >>$OUT/load.txt
}
run() { # name, command...
  local name=$1; shift
  quiet "$name"
  vmstat 2 >$OUT/vmstat-$name.txt & local vm=$!
  "$@"
  echo "  rc=$? end $(date -u +%T) uptime:$(uptime)" >>$OUT/load.txt
  kill $vm
}
for i in "$@"; do
  run ingest-sqlite-run$i sh -c "rm -f /tmp/bench-ingest-remeasure.db*; $BIN bench ingest --store /tmp/bench-ingest-remeasure.db --json >$OUT/ingest-sqlite-run$i.json 2>$OUT/ingest-sqlite-run$i.stderr"
  run ingest-postgres-run$i sh -c "$BIN bench ingest --store '$PG' --json >$OUT/ingest-postgres-run$i.json 2>$OUT/ingest-postgres-run$i.stderr"
  run pipeline-run$i sh -c "go test -run '^\$' -bench Pipeline -benchtime 20000x -count 3 ./domain >$OUT/pipeline-run$i.txt 2>&1"
done
echo "done $*" >>$OUT/load.txt
