#!/usr/bin/env bash
# After run2.sh: the query load's searches at 4c4d42a (D: on SQLite a
# search alone ranks its candidates inside FTS5, then reads the page's
# rows), once, load-gated as run.sh.
set -uo pipefail
out=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$out/../.." && pwd)
BIN=${BIN:-/tmp/b7}
for _ in $(seq 1 36); do awk '{exit !($1 <= 1.5)}' /proc/loadavg && break; sleep 5; done
sync; sleep 5
echo "queryload3 $(date -u +%H:%M:%S) $(uptime)" >> "$out/load.txt"
cd "$repo/projection/internal/loadquery"
"$BIN/lq-D" -test.run '^$' -test.bench BenchmarkQueryLoad -test.benchtime 1x -test.timeout 60m -loadquery.kinds search_common,search_rare > "$out/queryload3.txt" 2>&1
