#!/usr/bin/env bash
# The GlusterFS volume fsd's machines share, made once, as root, on the first
# machine, after installing glusterfs-server on all three (apt-get install
# glusterfs-server glusterfs-client; systemctl enable --now glusterd) and
# giving each a brick directory on its own disk (not the root file system).
#
#   deploy/cluster/make-volume.sh lab1 lab2 lab3            # replica 3: three full copies
#   deploy/cluster/make-volume.sh --arbiter lab1 lab2 lab3  # replica 2 + arbiter: two copies,
#                                                           # lab3 keeps only metadata
#
# Then, on every machine (the fstab line mounts it at boot, before fsd starts):
#   mkdir -p /srv/lab
#   echo 'lab1:/fsd /srv/lab glusterfs defaults,_netdev,backup-volfile-servers=lab2:lab3 0 0' >> /etc/fstab
#   mount /srv/lab
# and check what fsd relies on: fsd serve refuses to start where locks or link(2) fall short.
set -euo pipefail

arbiter=()
if [ "${1:-}" = "--arbiter" ]; then
  arbiter=(arbiter 1)
  shift
fi
[ $# -eq 3 ] || { echo "usage: $0 [--arbiter] HOST1 HOST2 HOST3" >&2; exit 2; }
brick=${FSD_BRICK:-/data/brick/fsd}
volume=${FSD_VOLUME:-fsd}

for host in "$2" "$3"; do gluster peer probe "$host"; done
if [ ${#arbiter[@]} -gt 0 ]; then
  gluster volume create "$volume" replica 3 "${arbiter[@]}" "$1:$brick" "$2:$brick" "$3:$brick"
else
  gluster volume create "$volume" replica 3 "$1:$brick" "$2:$brick" "$3:$brick"
fi
# A file written through one machine is read whole through another at once: the options in
# volume.options (beside this script) turn off the caching of attributes that would not.
grep -Ev '^(#|$)' "$(dirname "$0")/volume.options" | while read -r key value; do
  gluster volume set "$volume" "$key" "$value"
done
gluster volume start "$volume"
gluster volume info "$volume"
