#!/bin/bash
# usage: ab.sh OUT bin1 bin2 ... ; runs each bin ROUNDS times interleaved, --clients 64
out=$1; shift
for r in $(seq 1 ${ROUNDS:-3}); do
  for bin in "$@"; do
    sync; sleep 3
    echo "== $bin round $r" >> $out
    $bin bench ingest --clients ${CL:-64} --json 2>/dev/null >> $out
  done
done
