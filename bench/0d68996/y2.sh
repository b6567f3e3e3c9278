for r in 1 2 3; do for y in 0 3 8; do
  rm -rf /tmp/prof/x.db*; sync; sleep 3
  YIELDS=$y /tmp/rawevents-y bench ingest --store /tmp/prof/x.db --clients 1,8,64 2>&1 | grep -E "^store|^HTTP" | sed "s/^/y$y r$r /"
done; done
