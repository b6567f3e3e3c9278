# A/B: $A and $B, --clients ${CL:-64}, order A B B A A B B A
i=0
for x in A B B A A B B A; do i=$((i+1))
  bin=/tmp/rawevents-base; [ $x = B ] && bin=/tmp/rawevents-B
  rm -rf /tmp/prof/x.db*; sync; sleep 3
  $bin bench ingest --store ${STORE:-/tmp/prof/x.db} --clients ${CL:-64} 2>&1 | grep -E "^store|^HTTP" | sed "s/^/$x $i /"
done
