#!/bin/bash
# Three runs of "rawevents bench ingest" (--clients 1,8,64, both shapes) on SQLite, then three on
# PostgreSQL, with the binary built from 309c8ef. sync and 3 s before each run.
bin=${BIN:-/tmp/re-conn}
for r in 1 2 3; do sync; sleep 3; echo "== sqlite run $r"; $bin bench ingest 2>/dev/null; done
for r in 1 2 3; do sync; sleep 3; echo "== postgres run $r"; $bin bench ingest --store "postgres://postgres@127.0.0.1:5432/test?sslmode=disable" 2>/dev/null; done
