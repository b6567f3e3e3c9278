#!/bin/bash
# A/B (scratch builds, not part of the three runs): the PostgreSQL halves of
# BenchmarkPipeline at 1b30946, at 190cb09, and at 190cb09 without migration
# 004 (driver/postgres/migrations/004_append_many_no_jit.sql deleted from a
# `git archive` copy), interleaved. Test binaries built beforehand with
#   (cd SNAPSHOT && go test -c -o /tmp/remeasure-domain-VARIANT.test ./domain)
# and run from the snapshot's domain directory.
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
  for v in 1b30946 190cb09 nojit; do
    quiet "ab-$v-round$round"
    (cd /tmp/remeasure-snap-$v/domain && /tmp/remeasure-domain-$v.test -test.run '^$' \
      -test.bench 'Pipeline/Postgres/(append100|appendMany200x1|workers=1)$' -test.benchtime 20000x -test.count 1) \
      >>$OUT/ab-$v.txt 2>&1
    echo "  end $(date -u +%T) uptime:$(uptime)" >>$OUT/ab-load.txt
  done
done
