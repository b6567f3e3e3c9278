#!/usr/bin/env bash
# A = 95ab8a0 (a projection's writes on SQLite one statement each; on
# PostgreSQL a live generation's tsvector generated row by row), B = bbaf1b0
# (SQLite many rows a statement; PostgreSQL's tsvector filled at the index
# build; users' payloads on the v2 decoder): BenchmarkCatchUp A B B A, then
# BenchmarkPipeline at B, each backend in a process of its own, three times
# (bench/785d7cb/run.sh). Before each run: wait (at most 3 minutes) for the
# 1-minute load to fall to 1.5, sync, 5 s; load.txt records it.
# Binaries: go test -c -o $BIN/proj-X ./projection (X = A, B),
# go test -c -o $BIN/domain-D ./domain at B.
set -uo pipefail
out=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$out/../.." && pwd)
BIN=${BIN:-/tmp/bx}
. "$(dirname "$0")/../lib.sh"
cd "$repo/projection"
i=0
for v in A B B A; do
  i=$((i + 1))
  wait_quiet "catchup-$i-$v"
  "$BIN/proj-$v" -test.run '^$' -test.bench CatchUp -test.benchtime 2x -test.count 2 -test.timeout 60m > "$out/catchup-$i-$v.txt" 2>&1
done
OUT="$out" BIN="$BIN" bash "$repo/bench/785d7cb/run.sh"
