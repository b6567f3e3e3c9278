#!/usr/bin/env bash
# BenchmarkCatchUp/SQLite read and batch=500 (with its nosearch and noop
# variants), -benchtime 4x -count 3, at 4e3b1ed (one goroutine runs the
# handler and its statements) and then at 160841e (the statements on a
# goroutine of their own), one right after the other, no load gate.
# Run from the repository at each commit:
#   bash bench/160841e/run.sh > bench/160841e/catchup-<commit>.txt
go test -run XXX -bench 'BenchmarkCatchUp/SQLite/(read|batch=500)$' -benchtime 4x -count 3 ./projection/ 2>&1 |
  grep -E '^Bench|^\s+[0-9]+\s' | grep -v INFO
