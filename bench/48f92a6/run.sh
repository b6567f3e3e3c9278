#!/bin/bash
# P = ee23ff3, Q = 48f92a6 (go build -o $BIN/rawevents-X ./cmd/rawevents); rawevents bench ingest
# --clients 8,64 on SQLite, P Q three times, each after the load gate (1.5), sync and 3 s.
out=$(cd "$(dirname "$0")" && pwd)
BIN=${BIN:-/tmp/bx}
for i in 1 2 3; do
  for v in P Q; do
    for t in $(seq 1 60); do l=$(cut -d' ' -f1 /proc/loadavg); awk -v l=$l 'BEGIN{exit !(l<=1.5)}' && break; sleep 2; done
    sync; sleep 3
    $BIN/rawevents-$v bench ingest --clients 8,64 --json --store "$out/x.db" > "$out"/i3-$v-$i.json 2>/dev/null
    echo "$v $i load=$l"
  done
done
