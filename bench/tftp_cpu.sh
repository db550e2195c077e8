#!/bin/bash
# The CPU time fsd's TFTP server spends on fixed work, read from /proc (steadier than wall time on
# a loaded machine): 3 x 200 MiB to curl at blksize 65464, and 20 MiB to tftp-hpa in 512-byte
# lock-step. Run it on two trees to compare them: bench/tftp_cpu.sh [TREE] (default: this one).
# Needs curl and tftp (tftp-hpa); loopback only.
set -euo pipefail
TREE=${1:-$(dirname "$0")/..}
DENO=${DENO:-deno}
ROOT=$(mktemp -d)
trap 'kill $PID 2>/dev/null; rm -rf "$ROOT"' EXIT
head -c $((200 * 1024 * 1024)) /dev/zero >"$ROOT/f200"
head -c $((20 * 1024 * 1024)) /dev/zero >"$ROOT/f20"
"$DENO" run --allow-net --allow-read="$ROOT" --allow-write="$ROOT" "$TREE/main.ts" \
  serve "$ROOT" 0 --host 127.0.0.1 --tftp-only --tftp 0 >"$ROOT/log" 2>&1 &
PID=$!
for _ in $(seq 1 40); do grep -q "port" "$ROOT/log" && break; sleep 0.25; done
PORT=$(grep -o "port [0-9]*" "$ROOT/log" | head -1 | cut -d' ' -f2)
cpu() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
a=$(cpu)
for _ in 1 2 3; do curl -s --tftp-blksize 65464 -o /dev/null "tftp://127.0.0.1:$PORT/f200"; done
b=$(cpu)
echo "curl 3 x 200 MiB: server CPU $(((b - a)))0 ms"
a=$(cpu)
tftp -m binary 127.0.0.1 "$PORT" -c get f20 /dev/null
b=$(cpu)
echo "tftp-hpa 20 MiB lock-step: server CPU $(((b - a)))0 ms"
