# Sourced by the bench/*/run.sh scripts. wait_quiet LABEL waits, at most
# 3 minutes, for the 1-minute load to fall to 1.5, then syncs and waits 5 s,
# and records LABEL, the time and uptime in $out/load.txt.
wait_quiet() {
  for _ in $(seq 1 36); do
    awk '{exit !($1 <= 1.5)}' /proc/loadavg && break
    sleep 5
  done
  sync; sleep 5
  echo "$1 $(date -u +%H:%M:%S) $(uptime)" >> "$out/load.txt"
}
