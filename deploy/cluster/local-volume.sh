#!/usr/bin/env bash
# A GlusterFS volume on one machine, standing in for N machines: glusterd, a
# replica-3 volume on three bricks under DIR, and three FUSE mounts of it
# (DIR/mnt1..3), one per "machine". For tests and for trying the cluster out;
# needs root, /dev/fuse and glusterfs-server + glusterfs-client.
#
#   deploy/cluster/local-volume.sh up DIR        # prints "mounted DIR/mnt1 DIR/mnt2 DIR/mnt3"
#   deploy/cluster/local-volume.sh down DIR      # unmounts, stops and deletes the volume,
#                                                # stops the glusterd it started, removes DIR
#   deploy/cluster/local-volume.sh kill-brick DIR N    # SIGKILL brick N's process (1..3)
#   deploy/cluster/local-volume.sh start-bricks DIR    # restart dead bricks (volume start force)
#   deploy/cluster/local-volume.sh heal DIR            # heal, wait until nothing is left to heal
#
# "down" always finishes: a busy mount is unmounted lazily (umount -l) as the
# last resort. A glusterd that was running before "up" is used and left running.
set -uo pipefail

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || {
  echo "usage: $0 up|down|kill-brick|start-bricks|heal DIR [N]" >&2
  exit 2
}
dir=$(realpath -m "$dir")
# One volume per DIR: the name comes from DIR, so two test runs never share one.
volume="fsd$(printf '%s' "$dir" | cksum | cut -d' ' -f1)"
gl() { timeout 60 gluster --mode=script "$@"; }
# GlusterFS refuses 127.0.0.1 and "localhost" for a brick; another loopback address will do.
host=127.0.0.2

up() {
  [ "$(id -u)" = 0 ] || { echo "local-volume: needs root" >&2; exit 1; }
  [ -e /dev/fuse ] || { echo "local-volume: needs /dev/fuse" >&2; exit 1; }
  mkdir -p "$dir"
  if ! timeout 10 gluster --mode=script volume list >/dev/null 2>&1; then
    glusterd --pid-file="$dir/glusterd.pid" || { echo "local-volume: glusterd did not start" >&2; exit 1; }
    touch "$dir/glusterd.ours"
  fi
  for i in $(seq 1 50); do gl volume list >/dev/null 2>&1 && break; sleep 0.1; done
  mkdir -p "$dir/brick1" "$dir/brick2" "$dir/brick3"
  gl volume create "$volume" replica 3 \
    "$host:$dir/brick1" "$host:$dir/brick2" "$host:$dir/brick3" force >/dev/null || exit 1
  # The options the real volume gets (make-volume.sh), so that the tests run what is deployed.
  grep -Ev '^(#|$)' "$(dirname "$0")/volume.options" | while read -r key value; do
    gl volume set "$volume" "$key" "$value" >/dev/null || exit 1
  done || exit 1
  gl volume start "$volume" >/dev/null || exit 1
  for n in 1 2 3; do
    mkdir -p "$dir/mnt$n"
    mount -t glusterfs "$host:/$volume" "$dir/mnt$n" || exit 1
  done
  echo "mounted $dir/mnt1 $dir/mnt2 $dir/mnt3"
}

down() {
  for n in 1 2 3; do
    if mountpoint -q "$dir/mnt$n"; then
      timeout 20 umount "$dir/mnt$n" 2>/dev/null || umount -l "$dir/mnt$n"
    fi
  done
  if gl volume info "$volume" >/dev/null 2>&1; then
    gl volume stop "$volume" force >/dev/null
    gl volume delete "$volume" >/dev/null
  fi
  # Brick processes of this volume that outlived it.
  pkill -KILL -f -- "--volfile-id $volume\." 2>/dev/null
  if [ -e "$dir/glusterd.ours" ]; then
    # Only the glusterd this script started, and the daemons it spawned.
    [ -s "$dir/glusterd.pid" ] && kill "$(cat "$dir/glusterd.pid")" 2>/dev/null
    for pidfile in /var/run/gluster/*.pid /var/run/gluster/shd/*/*.pid; do
      [ -s "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null
    done
  fi
  for n in 1 2 3; do mountpoint -q "$dir/mnt$n" && umount -l "$dir/mnt$n"; done
  rm -rf "$dir"
}

brick_pid() {
  pgrep -f -- "--volfile-id $volume\.$host\..*brick$1( |$)" | head -n 1
}

case "$cmd" in
up) up ;;
down) down ;;
kill-brick)
  pid=$(brick_pid "${3:?brick number}")
  [ -n "$pid" ] || { echo "local-volume: no process for brick $3" >&2; exit 1; }
  pidfile=$(tr '\0' '\n' <"/proc/$pid/cmdline" | sed -n '/^-p$/{n;p}')
  kill -KILL "$pid"
  # Where nothing reaps the dead brick (a container's PID 1), its zombie would look alive to
  # glusterd through the pid file, and "start force" would not restart it.
  rm -f "$pidfile"
  ;;
start-bricks) gl volume start "$volume" force >/dev/null ;;
heal)
  # The bricks "start-bricks" restarted, and the self-heal daemon, come up after it returns, and a
  # heal launched before them fails ("brick op 'Heal' failed"): it is asked again every 5 s until
  # every brick answers with nothing left to heal (a brick not connected counts as not done).
  for i in $(seq 1 120); do
    [ $((i % 5)) = 1 ] && gl volume heal "$volume" >/dev/null 2>&1
    info=$(gl volume heal "$volume" info 2>&1)
    [ "$(printf '%s\n' "$info" | grep -c '^Number of entries: 0$')" = 3 ] && exit 0
    sleep 1
  done
  left=$(printf '%s\n' "$info" | awk '/^Number of entries:/ { n += $4 } END { print n + 0 }')
  echo "local-volume: $left entries still to heal, or a brick not back:" >&2
  printf '%s\n' "$info" | grep -E '^(Brick|Status|Number of entries)' >&2
  exit 1
  ;;
*)
  echo "usage: $0 up|down|kill-brick|start-bricks|heal DIR [N]" >&2
  exit 2
  ;;
esac
