#!/usr/bin/env bash
# After run.sh: B = b714c75 against C = e938229 (a partition's events
# carried into the next page's batch; PostgreSQL's search column made with
# the table). Same load gate as run.sh.
#  1. BenchmarkPipeline without River, B C C B.
#  2. BenchmarkCatchUp, B C C B, -benchtime 2x.
set -uo pipefail
out=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$out/../.." && pwd)
BIN=${BIN:-/tmp/b7}
. "$(dirname "$0")/../lib.sh"
cd "$repo/domain"
i=0
for x in B C C B; do
  i=$((i+1)); wait_quiet "pipeline2-$i-$x"
  "$BIN/domain-$x" -test.run '^$' -test.bench 'Pipeline/(SQLite|Postgres)/(append100|partitions|workers)' -test.benchtime 20000x -test.timeout 60m > "$out/pipeline2-$i-$x.txt" 2>&1
done
cd "$repo/projection"
i=0
for x in B C C B; do
  i=$((i+1)); wait_quiet "catchup2-$i-$x"
  "$BIN/proj-$x" -test.run '^$' -test.bench BenchmarkCatchUp -test.benchtime 2x -test.timeout 30m > "$out/catchup2-$i-$x.txt" 2>&1
done
echo "done2 $(date -u +%H:%M:%S) $(uptime)" >> "$out/load.txt"
