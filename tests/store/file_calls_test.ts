/**
 * Which metadata calls the server's read path makes (lib/store/file_calls.ts):
 * synchronous only while every mount of the machine is a disk, memory or
 * kernel file system (by /proc/self/mountinfo, which Deno lets only
 * --allow-all read), async otherwise. A real GlusterFS mount turning them
 * async is checked in tests/cluster/cluster_test.ts.
 */

import assert from "node:assert/strict";
import { onBlockDevice, onlyLocalMounts } from "../../lib/store/file_calls.ts";
import { serverCalls, serverReads } from "../support/file_calls.ts";
import { SYNC_READ_BYTES } from "../../lib/bytes/source_sink.ts";
import { IN_CI } from "../support/tools.ts";

/** A mountinfo line: mount point and type, the rest as Linux writes it. */
const line = (id: number, point: string, type: string) =>
  `${id} 1 0:${id} / ${point} rw,relatime shared:${id} - ${type} src rw`;

const table = (...lines: string[]) => lines.join("\n") + "\n";

const BASE = [
  line(1, "/", "ext4"),
  line(2, "/proc", "proc"),
  line(3, "/sys", "sysfs"),
  line(4, "/dev", "devtmpfs"),
  line(5, "/sys/fs/cgroup", "cgroup2"),
  line(6, "/tmp/mem", "tmpfs"),
  line(7, "/srv/disk2", "xfs"),
];

Deno.test("file calls: synchronous only while every mount is a disk, memory or kernel file system", () => {
  assert.equal(onlyLocalMounts(table(...BASE)), true);
  for (
    const type of ["nfs4", "cifs", "ceph", "9p", "virtiofs", "fuse.glusterfs", "fuseblk", "autofs"]
  ) {
    // Anywhere on the machine: a path under DIR or a symlink in it can reach it.
    assert.equal(onlyLocalMounts(table(...BASE, line(8, "/mnt/far", type))), false, type);
  }
  assert.equal(onlyLocalMounts(table(...BASE, line(8, "/mnt/new", "somefs"))), false, "unknown");
  assert.equal(onlyLocalMounts(""), false, "an empty table");
  assert.equal(onlyLocalMounts(table(...BASE, "garbage")), false, "a line it cannot read");
});

/** Linux's makedev(3). */
const makedev = (major: number, minor: number) =>
  (Math.floor(major / 4096) * 2 ** 44) + (major % 4096) * 256 +
  (Math.floor(minor / 256) * 2 ** 20) + (minor % 256);

Deno.test({
  name:
    "file calls: a file's contents count as local when its device is a block device (major not 0), whatever the mounts",
  ignore: Deno.build.os !== "linux",
  fn: () => {
    assert.equal(makedev(254, 0), 65024, "makedev as stat(1) shows it");
    for (const [major, minor] of [[8, 1], [254, 0], [259, 3], [4097, 0], [8, 300]]) {
      assert.equal(onBlockDevice(makedev(major, minor)), true, `${major}:${minor}`);
    }
    // tmpfs, NFS, FUSE, overlay, btrfs: anonymous devices, major 0, whatever the minor.
    for (const minor of [0, 41, 300, 70000]) {
      assert.equal(onBlockDevice(makedev(0, minor)), false, `0:${minor}`);
    }
    assert.equal(onBlockDevice(null), false);
    assert.equal(onBlockDevice(undefined), false);
  },
});

Deno.test({
  name:
    "file calls: --allow-all reads the mount table and follows it; --allow-read (even naming the file) stays async",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    const all = await serverCalls(["--allow-all"]);
    assert.ok(all.mountinfo, "--allow-all reads /proc/self/mountinfo");
    assert.equal(all.sync, onlyLocalMounts(all.mountinfo));
    // CI's machine has only local mounts (the GlusterFS test unmounts its volume), so the
    // synchronous calls are the ones the installed-permission tests (race_test.ts) run.
    if (IN_CI) assert.equal(all.sync, true, all.mountinfo);
    for (const narrow of [["--allow-read"], ["--allow-read=/proc/self/mountinfo"]]) {
      const calls = await serverCalls(narrow);
      assert.equal(calls.mountinfo, undefined, `${narrow}: Deno refuses the file`);
      assert.equal(calls.sync, false, narrow.join(" "));
    }
  },
});

Deno.test({
  name:
    "file calls: a file's first SYNC_READ_BYTES are read synchronously where the calls are or the file is on a disk, the rest async, and readSync is offered there only",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      const block = 64 * 1024;
      await Deno.writeFile(`${dir}/small`, new Uint8Array(block));
      await Deno.writeFile(`${dir}/large`, new Uint8Array(16 * block));
      const all = await serverReads(dir, ["--allow-all"]);
      if (IN_CI) assert.equal(all.sync, true, all.mountinfo);
      // readSync (TFTP's blocks read straight into their datagrams) exactly where reads may be.
      assert.deepEqual(all.readSync, { small: all.sync, large: all.sync });
      if (all.sync) {
        // The block, then the read that finds the end: no hand-off for a small file.
        assert.deepEqual(all.reads.small, [true, true]);
        const synced = SYNC_READ_BYTES / block + 1;
        assert.deepEqual(all.reads.large, [
          ...Array(synced).fill(true),
          ...Array(16 + 1 - synced).fill(false),
        ]);
      }
      // Narrow permissions: the calls are async, and the contents follow the file's own device.
      const narrow = await serverReads(dir, ["--allow-read", "--allow-write"]);
      assert.equal(narrow.sync, false);
      const disk = onBlockDevice(Deno.statSync(dir).dev);
      if (IN_CI) assert.equal(disk, true, "CI's temporary directory is on a disk");
      assert.deepEqual(narrow.readSync, { small: disk, large: disk });
      assert.deepEqual(narrow.reads.small, [disk, disk]);
      const synced = SYNC_READ_BYTES / block + 1;
      assert.deepEqual(
        narrow.reads.large,
        disk
          ? [...Array(synced).fill(true), ...Array(17 - synced).fill(false)]
          : Array(17).fill(false),
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
