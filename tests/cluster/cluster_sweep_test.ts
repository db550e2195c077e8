/**
 * A cluster a killed test run left behind (its owner process gone) is taken
 * down by the next run's withCluster before it builds its own; another
 * run's, whose owner lives, is left alone. Needs no GlusterFS: a directory
 * with no volume and no mounts goes through local-volume.sh's `down` too.
 */

import assert from "node:assert/strict";
import { sweepStaleClusters } from "../support/cluster.ts";
import { tempDir } from "../support/files.ts";

const exists = (path: string) => Deno.stat(path).then(() => true, () => false);

Deno.test("cluster: a cluster whose test process is gone is swept; a live one, or one without an owner, is not", async () => {
  await using tmp = await tempDir();
  const gone = await new Deno.Command("true").spawn();
  await gone.status;
  const dirs = {
    dead: `${tmp.path}/fsd-cluster-dead`,
    live: `${tmp.path}/fsd-cluster-live`,
    unowned: `${tmp.path}/fsd-cluster-unowned`,
    other: `${tmp.path}/other`,
  };
  for (const dir of Object.values(dirs)) await Deno.mkdir(`${dir}/brick1`, { recursive: true });
  await Deno.writeTextFile(`${dirs.dead}/owner.pid`, String(gone.pid));
  await Deno.writeTextFile(`${dirs.live}/owner.pid`, String(Deno.pid));
  await Deno.writeTextFile(`${dirs.other}/owner.pid`, String(gone.pid));

  assert.deepEqual(await sweepStaleClusters(tmp.path), [dirs.dead]);
  assert.equal(await exists(dirs.dead), false);
  for (const dir of [dirs.live, dirs.unowned, dirs.other]) assert.equal(await exists(dir), true);
});
