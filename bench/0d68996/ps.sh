for r in 1 2; do for ps in 1024 4096 2048; do
  rm -rf /tmp/prof/x.db*; sync; sleep 3
  /tmp/rawevents-ps$ps bench ingest --store /tmp/prof/x.db --clients 64 2>&1 | grep -E "^store|^HTTP" | sed "s/^/ps$ps r$r /"
done; done
