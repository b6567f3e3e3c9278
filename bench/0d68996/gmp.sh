for r in 1 2; do for g in 2 4 3; do
  rm -rf /tmp/prof/x.db*; sync; sleep 3
  GOMAXPROCS=$g /tmp/rawevents-base bench ingest --store /tmp/prof/x.db --clients 64 2>&1 | grep -E "^store|^HTTP" | sed "s/^/gmp$g r$r /"
done; done
