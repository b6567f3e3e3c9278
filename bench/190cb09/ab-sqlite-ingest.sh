#!/bin/bash
# A/B (not part of the three runs): SQLite `bench ingest --clients 64` at
# 8e3d60c (binary built from a `git archive 8e3d60c` copy) and at 190cb09,
# interleaved, to see whether HTTP single events at 64 clients moved with the
# code or with the machine.
set -u
OUT=$(cd "$(dirname "$0")" && pwd)
quiet() {
  local waited=0
  while :; do
    l=$(awk '{print $1}' /proc/loadavg)
    if awk -v l="$l" 'BEGIN{exit !(l<=1.5)}'; then break; fi
    if [ $waited -ge 600 ]; then echo "  still loaded after 600 s" >>$OUT/ab-load.txt; break; fi
    sleep 30; waited=$((waited+30))
  done
  echo "$1: start $(date -u +%T) uptime:$(uptime)" >>$OUT/ab-load.txt
}
for round in "$@"; do
  for v in 8e3d60c 190cb09; do
    bin=/tmp/rawevents-remeasure-$v; [ $v = 190cb09 ] && bin=/tmp/rawevents-remeasure
    quiet "ab-sqlite-ingest-$v-round$round"
    rm -f /tmp/bench-ingest-remeasure.db*
    $bin bench ingest --store /tmp/bench-ingest-remeasure.db --clients 64 --json >>$OUT/ab-sqlite-ingest-$v.json 2>>$OUT/ab-sqlite-ingest-$v.stderr
    echo "  rc=$? end $(date -u +%T) uptime:$(uptime)" >>$OUT/ab-load.txt
  done
done
