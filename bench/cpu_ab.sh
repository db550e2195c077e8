#!/bin/bash
# Interleaved rounds of several command lines, with the CPU each costs: on a
# shared machine wall time swings 2-4x between runs, CPU time much less.
#
#   bench/cpu_ab.sh ROUNDS SERVER_PID PREP LABEL "COMMAND" [LABEL "COMMAND" ...]
#
# Each round runs every command once, in order, after PREP (a command that
# resets the destination, e.g. "rm -rf /tmp/x; mkdir /tmp/x"). Per command it
# prints the best and the median of: wall ms, the client's CPU ms (perf stat
# task-clock: every thread of the process) and the server's CPU ms (SERVER_PID's
# utime + stime from /proc before and after; 10 ms resolution; 0 for none).
set -u
R=$1; SPID=$2; PREP=$3; shift 3
declare -a L C; n=0
while [ $# -gt 0 ]; do L[$n]=$1; C[$n]=$2; n=$((n + 1)); shift 2; done
out=$(mktemp -d)
ticks() { if [ "$SPID" = 0 ]; then echo 0; else awk '{print $14 + $15}' "/proc/$SPID/stat"; fi; }
for _ in $(seq "$R"); do
  for i in $(seq 0 $((n - 1))); do
    sh -c "$PREP"
    before=$(ticks); start=$(date +%s%N)
    # shellcheck disable=SC2086
    perf stat -x, -e task-clock -o "$out/stat" ${C[$i]} >/dev/null 2>"$out/err"
    end=$(date +%s%N); after=$(ticks)
    cpu=$(grep task-clock "$out/stat" | cut -d, -f1)
    echo "$(((end - start) / 1000000)) $cpu $(((after - before) * 10))" >>"$out/$i"
  done
done
for i in $(seq 0 $((n - 1))); do
  python3 - "${L[$i]}" "$out/$i" <<'PY'
import statistics as st, sys
rows = [list(map(float, line.split())) for line in open(sys.argv[2])]
cols = list(zip(*rows))
fmt = lambda c: f"best {min(c):7.0f} median {st.median(c):7.0f}"
print(f"{sys.argv[1]:12s} wall {fmt(cols[0])} | client CPU {fmt(cols[1])} | server CPU {fmt(cols[2])} ms (n={len(rows)})")
PY
done
rm -rf "$out"
