/**
 * Which metadata calls the server's read path makes (lib/store/file_calls.ts):
 * synchronous only while every file system at or under the served directory
 * is local, by /proc/self/mountinfo; async otherwise. The GlusterFS mount is
 * checked for real in tests/cluster/cluster_test.ts.
 */

import assert from "node:assert/strict";
import { onlyLocalMounts, RootCalls } from "../../lib/store/file_calls.ts";
import { tempDir } from "../support/files.ts";
import { syncUnder } from "../support/file_calls.ts";

/** A mountinfo line: mount point and type, the rest as Linux writes it. */
const line = (id: number, point: string, type: string) =>
  `${id} 1 0:${id} / ${point} rw,relatime shared:${id} - ${type} src rw`;

const table = (...lines: string[]) => lines.join("\n") + "\n";

Deno.test("file calls: local file systems only, at the directory and under it", () => {
  const base = [line(1, "/", "ext4"), line(2, "/proc", "proc"), line(3, "/tmp/mem", "tmpfs")];
  assert.equal(onlyLocalMounts(table(...base), "/srv/files"), true, "on the root's ext4");
  assert.equal(onlyLocalMounts(table(...base), "/tmp/mem/x"), true, "on a tmpfs");
  assert.equal(onlyLocalMounts(table(...base), "/tmp/mem"), true, "the tmpfs mount point itself");
  assert.equal(
    onlyLocalMounts(table(...base), "/tmp/memory"),
    true,
    "a name that only starts alike",
  );
  // A network file system inside the served directory, or holding it.
  assert.equal(
    onlyLocalMounts(table(...base, line(4, "/srv/files/nfs", "nfs4")), "/srv/files"),
    false,
    "an NFS mount inside",
  );
  assert.equal(
    onlyLocalMounts(table(...base, line(4, "/srv/files/nfs", "nfs4")), "/srv/other"),
    true,
    "an NFS mount beside",
  );
  assert.equal(
    onlyLocalMounts(table(...base, line(4, "/tmp/lab/mnt1", "fuse.glusterfs")), "/tmp/lab/mnt1/a"),
    false,
    "under a GlusterFS FUSE mount",
  );
  assert.equal(
    onlyLocalMounts(table(...base, line(4, "/mnt", "autofs")), "/mnt/share"),
    false,
    "an automount point (a call may wait for a mount)",
  );
  // Stacked mounts: the last one on a point is the one on top.
  assert.equal(
    onlyLocalMounts(table(...base, line(4, "/data", "ext4"), line(5, "/data", "cifs")), "/data/x"),
    false,
  );
  assert.equal(
    onlyLocalMounts(table(...base, line(4, "/data", "cifs"), line(5, "/data", "ext4")), "/data/x"),
    true,
  );
  // Mount points are written with \\ooo escapes.
  assert.equal(
    onlyLocalMounts(table(...base, line(4, "/srv/my\\040files/nfs", "nfs")), "/srv/my files"),
    false,
  );
  // Nothing known holds the directory, or a line cannot be read: async.
  assert.equal(onlyLocalMounts("", "/srv"), false);
  assert.equal(onlyLocalMounts(table(...base, "garbage"), "/srv"), false);
});

Deno.test({
  name:
    "file calls: synchronous on a local directory with --allow-all (Deno reads /proc/self/mountinfo for no less), async otherwise",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    await using dir = await tempDir(); // on this machine's disk or a tmpfs: local either way
    assert.equal(await syncUnder(dir.path, ["--allow-all"]), true);
    assert.equal(await syncUnder(dir.path, ["--allow-read"]), false);
    assert.equal(
      await syncUnder(dir.path, [`--allow-read=${dir.path},/proc/self/mountinfo`]),
      false,
    );
    // Either way the calls answer alike.
    const real = await Deno.realPath(dir.path);
    const calls = await RootCalls.of(real);
    await Deno.writeTextFile(`${real}/f`, "x");
    assert.equal((await calls.stat(`${real}/f`)).size, 1);
    assert.equal(await calls.realPath(`${real}/f`), `${real}/f`);
    await assert.rejects(calls.lstat(`${real}/missing`), Deno.errors.NotFound);
    using file = await calls.open(`${real}/f`, { read: true });
    assert.equal(file.statSync().size, 1);
  },
});
