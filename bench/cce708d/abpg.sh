#!/bin/bash
out=$1; shift
for r in $(seq 1 ${ROUNDS:-3}); do
  for bin in "$@"; do
    sync; sleep 3
    echo "== $bin round $r" >> $out
    $bin bench ingest --clients 64 --json --store "postgres://postgres@127.0.0.1:5432/test?sslmode=disable" 2>/dev/null >> $out
  done
done
