/**
 * TFTP downloads, the same clients against fsd's TFTP server, tftpd-hpa and
 * atftpd: tftp-hpa (512-byte lock-step), curl at blksize 65464 (lock-step), atftp at blksize 65464 with
 * windowsize 16, and fsd's own client with its defaults. Each row gives the
 * server's CPU time per GiB (user + system, its children included, from
 * /proc). Output goes to /dev/null: the servers are compared, not the disk.
 * fsd's server runs twice: from source with the narrow permissions its
 * command documents, and with README's install line's flags (`fsd
 * (installed)`: --allow-all, which lets it read the mount table and so read
 * each block straight into its datagram on local file systems, and wait for
 * an ACK on a blocking socket that spins first), the second for curl's,
 * tftp-hpa's and fsd's own client's rows.
 *
 *   deno run --allow-net=127.0.0.1 --allow-read --allow-write --allow-run bench/tftp_bench.ts [--quick] [--mb 100,1024] [--rounds 3]
 *
 * Each row is the best of `--rounds` runs (default 3; 1 with --quick), the
 * rounds interleaved (every pair once, then again), its median beside it;
 * 512-byte lock-step runs once past 100 MiB (a minute or more a GiB).
 *
 * Goals (issue 20), ratios of rows of one run: curl blksize 65464 from fsd
 * vs from tftpd-hpa >= 1.0x; tftp-hpa 512-byte lock-step, fsd vs tftpd-hpa
 * >= 0.8x; fsd's client vs curl, both from tftpd-hpa, >= 1.0x; fsd's client
 * from fsd's server (windows) vs curl from tftpd-hpa >= 2.0x. A missing peer
 * is skipped with a note, never faked.
 */

import { curlTftpGet, freeUdpPort, fsdServe, installedFlags, MAIN, timed } from "./support.ts";

/** fsd's server run with README's install line's flags. */
const INSTALLED = "fsd (installed)";

const MIB = 1024 * 1024;

export interface TftpBenchRow {
  what: string;
  bytes: number;
  ms: number;
  extra?: string;
}

interface Server {
  name: string;
  port: number;
  pid: number;
  stop(): Promise<unknown>;
}

async function have(path: string): Promise<boolean> {
  const found = await new Deno.Command("sh", { args: ["-c", `command -v ${path}`], stdout: "null" })
    .output().catch(() => ({ success: false }));
  return found.success;
}

/** CPU seconds of `pid` and its waited-for children (utime, stime, cutime, cstime). */
async function cpuSeconds(pid: number): Promise<number> {
  const out = await new Deno.Command("cat", { args: [`/proc/${pid}/stat`], stdout: "piped" })
    .output();
  const fields = new TextDecoder().decode(out.stdout).split(") ")[1]?.split(" ") ?? [];
  const ticks = [11, 12, 13, 14].reduce((n, i) => n + Number(fields[i] ?? 0), 0);
  return ticks / 100; // USER_HZ
}

function spawnDaemon(name: string, command: string, args: string[], port: number): Server {
  const child = new Deno.Command(command, { args, stdout: "null", stderr: "null" }).spawn();
  return {
    name,
    port,
    pid: child.pid,
    async stop() {
      child.kill("SIGTERM");
      await child.status;
    },
  };
}

async function startServers(root: string, notes: string[]): Promise<Server[]> {
  const servers: Server[] = [];
  // --allow-net whole: each transfer gets a UDP port of its own.
  const fsd = await fsdServe(root, ["--tftp-only"], undefined, {
    permissions: ["--allow-net", `--allow-read=${root}`, `--allow-write=${root}`],
    ready: /TFTP server listening on \S+ UDP port (\d+)/,
  });
  servers.push({ name: "fsd", port: fsd.port, pid: fsd.child.pid, stop: fsd.stop });
  // The same server as README installs it (--allow-all): on local file systems it reads each
  // block straight into its datagram (lib/store/file_calls.ts, lib/tftp/blocks.ts).
  const installed = await fsdServe(root, ["--tftp-only"], undefined, {
    permissions: await installedFlags(),
    ready: /TFTP server listening on \S+ UDP port (\d+)/,
  });
  servers.push({
    name: INSTALLED,
    port: installed.port,
    pid: installed.child.pid,
    stop: installed.stop,
  });
  if (await have("in.tftpd")) {
    const port = await freeUdpPort();
    servers.push(
      spawnDaemon("tftpd-hpa", "in.tftpd", [
        "-L",
        "-s",
        root,
        "-u",
        "root",
        "-B",
        "65464",
        "-a",
        `127.0.0.1:${port}`,
      ], port),
    );
  } else notes.push("tftpd-hpa missing: its rows skipped");
  const atftpd = new URL("../.ci/cache/atftpd/usr/sbin/atftpd", import.meta.url).pathname;
  if (await Deno.stat(atftpd).then((info) => info.isFile, () => false)) {
    const port = await freeUdpPort();
    servers.push(spawnDaemon("atftpd", atftpd, [
      "--daemon",
      "--no-fork",
      "--port",
      `${port}`,
      "--bind-address",
      "127.0.0.1",
      "--user",
      "root",
      "--group",
      "root",
      root,
    ], port));
  } else notes.push("atftpd not unpacked (.ci/run does it): its rows skipped");
  await new Promise((resolve) => setTimeout(resolve, 300)); // the daemons print nothing when ready
  return servers;
}

function clients(
  haveCurl: boolean,
  haveAtftp: boolean,
  haveHpa: boolean,
  installed: string[],
) {
  const list: { name: string; args(port: number, file: string): [string, string[]] }[] = [];
  if (haveHpa) {
    list.push({
      name: "tftp-hpa 512-byte lock-step",
      args: (port, file) => ["tftp", [
        "-m",
        "binary",
        "127.0.0.1",
        `${port}`,
        "-c",
        "get",
        file,
        "/dev/null",
      ]],
    });
  }
  if (haveCurl) {
    list.push({
      name: "curl blksize 65464",
      args: (port, file) => curlTftpGet(port, file, 65464),
    });
  }
  if (haveAtftp) {
    list.push({
      name: "atftp blksize 65464 windowsize 16",
      args: (port, file) => ["atftp", [
        "--option",
        "blksize 65464",
        "--option",
        "windowsize 16",
        "-g",
        "-r",
        file,
        "-l",
        "/dev/null",
        "127.0.0.1",
        `${port}`,
      ]],
    });
  }
  list.push({
    name: "fsd get (defaults)",
    args: (port, file) => [Deno.execPath(), [
      "run",
      "--quiet",
      "--allow-net",
      MAIN,
      "get",
      `tftp://127.0.0.1:${port}/${file}`,
      "-",
    ]],
  });
  // README's install line's flags: --allow-all gives the client lib/net's BlockingUdp (its waits
  // block its own thread, through the C library) where the narrow --allow-net keeps Deno's socket.
  list.push({
    name: "fsd get (defaults), installed",
    args: (port, file) => [Deno.execPath(), [
      "run",
      "--quiet",
      ...installed,
      MAIN,
      "get",
      `tftp://127.0.0.1:${port}/${file}`,
      "-",
    ]],
  });
  return list;
}

/** Runs every client against every server for each size; returns the rows and prints them. */
export async function tftpBench(
  options: { quick?: boolean; sizesMib?: number[]; rounds?: number } = {},
): Promise<{ rows: TftpBenchRow[]; notes: string[] }> {
  const sizes = options.sizesMib ?? (options.quick ? [4] : [100, 1024]);
  const rounds = options.rounds ?? (options.quick ? 1 : 3);
  const notes: string[] = [];
  const rows: TftpBenchRow[] = [];
  const root = await Deno.makeTempDir({ prefix: "fsd-tftp-bench-" });
  const servers = await startServers(root, notes);
  const haveCurl = await have("curl");
  const haveAtftp = await have("atftp");
  const haveHpa = await have("tftp");
  const installed = await installedFlags();
  if (!haveHpa) notes.push("tftp (tftp-hpa) missing: its rows skipped");
  if (!haveCurl) notes.push("curl missing: its rows skipped");
  if (!haveAtftp) notes.push("atftp missing: its rows skipped");
  try {
    for (const mib of sizes) {
      const file = `f${mib}`;
      await makeFile(`${root}/${file}`, mib * MIB);
      console.log(`\nTFTP: ${mib} MiB download to /dev/null, best of ${rounds} interleaved rounds`);
      // Each pair's runs, interleaved round by round so that a noisy minute hits every pair alike.
      const runs = new Map<string, { ms: number; cpuPerGib: number }[]>();
      for (let round = 1; round <= rounds; round++) {
        for (const client of clients(haveCurl, haveAtftp, haveHpa, installed)) {
          // 512-byte lock-step takes a minute or more a GiB: one round of it past 100 MiB.
          if (round > 1 && client.name.startsWith("tftp-hpa") && mib > 100) continue;
          for (const server of servers) {
            // tftpd-hpa has no windowsize: atftp's window there is lock-step; fsd get asks the same.
            if (server.name === "atftpd" && client.name.startsWith("atftp") && mib > 100) {
              if (round === 1) {
                notes.push(`atftp windowsize 16 from atftpd, ${mib} MiB: skipped (about 4 MiB/s)`);
              }
              continue;
            }
            // The installed server's rows are the goals' (curl, fsd get, tftp-hpa's lock-step):
            // atftp's runs from source only.
            if (server.name === INSTALLED && !/^(curl|fsd|tftp-hpa)/.test(client.name)) continue;
            const what = `${client.name} from ${server.name}, ${mib} MiB`;
            const [command, args] = client.args(server.port, file);
            const cpuBefore = await cpuSeconds(server.pid);
            const result = await timed(command, args).catch((error) => {
              notes.push(`${what}: ${error.message.slice(0, 200)}`);
              return undefined;
            });
            if (!result) continue;
            // tftpd-hpa forks a child per transfer: its time counts once the parent has reaped it.
            await new Promise((resolve) => setTimeout(resolve, 200));
            const cpu = (await cpuSeconds(server.pid)) - cpuBefore;
            const list = runs.get(what) ?? [];
            list.push({ ms: result.ms, cpuPerGib: cpu / (mib / 1024) });
            runs.set(what, list);
          }
        }
      }
      for (const [what, list] of runs) {
        const best = list.reduce((a, b) => b.ms < a.ms ? b : a);
        const sorted = list.map((r) => r.ms).sort((a, b) => a - b);
        const median = sorted[Math.floor((sorted.length - 1) / 2)];
        const row = {
          what,
          bytes: mib * MIB,
          ms: best.ms,
          extra: `${list.length > 1 ? `median ${(median / 1000).toFixed(3)} s, ` : ""}${
            best.cpuPerGib > 0
              ? `server CPU ${best.cpuPerGib.toFixed(2)} s/GiB`
              : "server CPU not seen (its per-transfer children are not counted)"
          }`,
        };
        rows.push(row);
        const rate = row.bytes / MIB / (row.ms / 1000);
        console.log(
          `  ${row.what}: ${(row.ms / 1000).toFixed(3)} s, ${rate.toFixed(1)} MiB/s, ${row.extra}`,
        );
      }
      await Deno.remove(`${root}/${file}`);
    }
  } finally {
    for (const server of servers) await server.stop();
    await Deno.remove(root, { recursive: true });
  }
  reportGoals(rows, sizes, notes);
  for (const note of notes) console.log(`note: ${note}`);
  return { rows, notes };
}

function reportGoals(rows: TftpBenchRow[], sizes: number[], notes: string[]): void {
  const rate = (what: string) => {
    const row = rows.find((r) => r.what === what);
    return row ? row.bytes / row.ms : undefined;
  };
  // Issue 20's goals, each a ratio of two rows of this run (side by side on a shared machine).
  const goals: [string, string, string, number][] = [
    [
      "curl blksize 65464: fsd's server / tftpd-hpa",
      "curl blksize 65464 from fsd",
      "curl blksize 65464 from tftpd-hpa",
      1.0,
    ],
    [
      "tftp-hpa 512-byte lock-step: fsd's server / tftpd-hpa",
      "tftp-hpa 512-byte lock-step from fsd",
      "tftp-hpa 512-byte lock-step from tftpd-hpa",
      0.8,
    ],
    [
      "from tftpd-hpa: fsd's client / curl",
      "fsd get (defaults) from tftpd-hpa",
      "curl blksize 65464 from tftpd-hpa",
      1.0,
    ],
    [
      "fsd's client from fsd's server (windows) / curl from tftpd-hpa",
      "fsd get (defaults) from fsd",
      "curl blksize 65464 from tftpd-hpa",
      2.0,
    ],
    [
      "curl blksize 65464: fsd's server, installed / tftpd-hpa",
      `curl blksize 65464 from ${INSTALLED}`,
      "curl blksize 65464 from tftpd-hpa",
      1.0,
    ],
    [
      "tftp-hpa 512-byte lock-step: fsd's server, installed / tftpd-hpa",
      `tftp-hpa 512-byte lock-step from ${INSTALLED}`,
      "tftp-hpa 512-byte lock-step from tftpd-hpa",
      0.8,
    ],
    [
      "fsd's client from fsd's server, installed (windows) / curl from tftpd-hpa",
      `fsd get (defaults) from ${INSTALLED}`,
      "curl blksize 65464 from tftpd-hpa",
      2.0,
    ],
    [
      "from tftpd-hpa: fsd's client, installed / curl",
      "fsd get (defaults), installed from tftpd-hpa",
      "curl blksize 65464 from tftpd-hpa",
      1.0,
    ],
    [
      "fsd's client and server, both installed (windows) / curl from tftpd-hpa",
      `fsd get (defaults), installed from ${INSTALLED}`,
      "curl blksize 65464 from tftpd-hpa",
      2.0,
    ],
  ];
  for (const mib of sizes) {
    for (const [goal, top, bottom, target] of goals) {
      const a = rate(`${top}, ${mib} MiB`);
      const b = rate(`${bottom}, ${mib} MiB`);
      if (!a || !b) continue;
      const ratio = a / b;
      const verdict = ratio >= target ? "met" : "NOT met";
      notes.push(
        `goal ${goal} >= ${target.toFixed(1)}x (${mib} MiB): ${ratio.toFixed(2)}x, ${verdict}`,
      );
    }
  }
}

async function makeFile(path: string, bytes: number): Promise<void> {
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  const chunk = new Uint8Array(MIB);
  for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 131 + 7) & 0xff;
  try {
    for (let written = 0; written < bytes; written += chunk.length) {
      await file.write(chunk.subarray(0, Math.min(chunk.length, bytes - written)));
    }
  } finally {
    file.close();
  }
}

if (import.meta.main) {
  const { parseArgs } = await import("node:util");
  const { values } = parseArgs({
    options: { quick: { type: "boolean" }, mb: { type: "string" }, rounds: { type: "string" } },
  });
  await tftpBench({
    quick: values.quick,
    rounds: values.rounds ? Number(values.rounds) : undefined,
    sizesMib: values.mb ? values.mb.split(",").map(Number) : undefined,
  });
}
