/**
 * A local cluster for tests: deploy/cluster/local-volume.sh's replica-3
 * GlusterFS volume with three FUSE mounts standing in for three machines,
 * one `fsd serve` on each mount (PROXY protocol, trusting HAProxy, and HTTP
 * with --http), and HAProxy in front from deploy/haproxy.cfg, for fsd/1 and
 * for HTTP. Needs root, /dev/fuse and
 * GlusterFS; `down` always tears everything down, also after a failure.
 */

import { type ServeWithHttp, spawnServeWithHttp } from "./cli.ts";
import { type Haproxy, startHaproxy } from "./haproxy.ts";
import { dirname } from "../../lib/path.ts";

export const LOCAL_VOLUME = new URL("../../deploy/cluster/local-volume.sh", import.meta.url)
  .pathname;
export const SERVE_ARGS = ["--proxy-protocol", "--trusted-proxy", "127.0.0.1"];

/** Whether this process may build a cluster (root; /dev/fuse is probed with the tool). */
export function isRoot(): boolean {
  // Deno.uid() needs --allow-sys=uid, which the test task does not grant: ask id(1) then.
  if (Deno.permissions.querySync({ name: "sys", kind: "uid" }).state === "granted") {
    return Deno.uid() === 0;
  }
  const out = new Deno.Command("id", { args: ["-u"], stdout: "piped", stderr: "null" })
    .outputSync();
  return new TextDecoder().decode(out.stdout).trim() === "0";
}

/** Runs local-volume.sh `args` on `base`, bounded in time; throws with its output if it fails. */
export async function volume(base: string, ...args: string[]): Promise<string> {
  const [command, ...rest] = args;
  const output = await new Deno.Command("timeout", {
    args: ["-k", "10", "240", LOCAL_VOLUME, command, base, ...rest],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(output.stdout) + new TextDecoder().decode(output.stderr);
  if (!output.success) throw new Error(`local-volume.sh ${args.join(" ")}: ${text.trim()}`);
  return text;
}

export interface Cluster {
  base: string;
  mounts: string[];
  servers: ServeWithHttp[];
  haproxy: Haproxy;
  /** Starts `fsd serve` on mount `i` again (after a kill) and tells HAProxy its ports. */
  restart(i: number): Promise<ServeWithHttp>;
}

/** The permissions `fsd serve` documents for serving `dir`. */
export function servePermissions(dir: string): string[] {
  return ["--allow-net", `--allow-read=${dir}`, `--allow-write=${dir}`];
}

const CLUSTER_PREFIX = "fsd-cluster-";
/** The pid of the test process that built a cluster, in its directory. */
const OWNER_FILE = "owner.pid";

/**
 * Takes down every cluster under `tmp` whose test process is gone (a run
 * killed before its teardown): their FUSE mounts would otherwise stay, and
 * with them every later server's calls async (tests/store/file_calls_test.ts
 * insists on sync calls in CI). A cluster whose owner lives, another run's
 * at the same time, is left alone; so is a directory without an owner file.
 */
export async function sweepStaleClusters(tmp: string): Promise<string[]> {
  const swept: string[] = [];
  for await (const entry of Deno.readDir(tmp)) {
    if (!entry.isDirectory || !entry.name.startsWith(CLUSTER_PREFIX)) continue;
    const dir = `${tmp}/${entry.name}`;
    const owner = Number(await Deno.readTextFile(`${dir}/${OWNER_FILE}`).catch(() => ""));
    if (!Number.isInteger(owner) || owner <= 0 || await alive(owner)) continue;
    await volume(dir, "down");
    swept.push(dir);
  }
  return swept;
}

/** Whether process `pid` exists: only "no such process" says it does not (/proc needs --allow-all). */
async function alive(pid: number): Promise<boolean> {
  const out = await new Deno.Command("sh", {
    args: ["-c", 'kill -0 "$1"', "sh", String(pid)],
    stdout: "null",
    stderr: "piped",
  }).output();
  return out.success || !/no such process/i.test(new TextDecoder().decode(out.stderr));
}

/**
 * Builds the cluster under a new directory in /tmp, runs `use` on it, and
 * tears it all down whatever happens: HAProxy, the servers, then the
 * mounts, the volume, the glusterd it started and the bricks.
 */
export async function withCluster(use: (cluster: Cluster) => Promise<void>): Promise<void> {
  const base = await Deno.makeTempDir({ prefix: CLUSTER_PREFIX });
  await Deno.writeTextFile(`${base}/${OWNER_FILE}`, String(Deno.pid));
  await sweepStaleClusters(dirname(base));
  const servers: ServeWithHttp[] = [];
  const spawned: ServeWithHttp[] = [];
  let haproxy: Haproxy | undefined;
  try {
    await volume(base, "up");
    const mounts = [1, 2, 3].map((n) => `${base}/mnt${n}`);
    const start = (i: number) =>
      spawnServeWithHttp(mounts[i], SERVE_ARGS, servePermissions(mounts[i]));
    servers.push(...await Promise.all(mounts.map((_, i) => start(i))));
    spawned.push(...servers);
    haproxy = await startHaproxy(
      base,
      servers.map((s, i) => ({ name: `fsd${i + 1}`, port: s.port, httpPort: s.httpPort })),
    );
    const cluster: Cluster = {
      base,
      mounts,
      servers,
      haproxy,
      async restart(i) {
        const server = await start(i);
        spawned.push(server);
        servers[i] = server;
        for (
          const [backend, port] of [["fsd_servers", server.port], [
            "fsd_http_servers",
            server.httpPort,
          ]]
        ) {
          await haproxy!.command(`set server ${backend}/fsd${i + 1} addr 127.0.0.1 port ${port}`);
        }
        return server;
      },
    };
    await use(cluster);
  } finally {
    await haproxy?.stop();
    for (const server of spawned) await server.stop("SIGKILL");
    await volume(base, "down");
  }
}
