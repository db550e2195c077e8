/**
 * What TLS and logins cost (bench/bench.ts section 7, or alone):
 *   1. `fsd get` of a large file to stdout, plain and over TLS (--ca, and
 *      --pin, which goes through node:tls), each the real CLI on 127.0.0.1,
 *      best of --runs; target: TLS at least 0.6x the plain rate;
 *   2. the time a login adds to a connection (scrypt with the default
 *      parameters), and a failed login with an unknown name against one
 *      with a wrong password, which should take the same time.
 *
 *   deno run -A bench/tls_bench.ts [--mb 1024] [--runs 3] [--logins 10]
 */

import { parseArgs } from "node:util";
import { hashPassword } from "../lib/auth/password.ts";
import { FsdClient } from "../lib/fsd/client.ts";
import { PeerError } from "../lib/store/errors.ts";
import { makeCertificates } from "../tests/support/tls_certs.ts";
import { fsdServe, MAIN, timed } from "./support.ts";

const MIB = 1024 * 1024;

export interface BenchRow {
  group: string;
  what: string;
  bytes: number;
  ms: number;
  extra?: string;
}

export interface TlsBenchResult {
  rows: BenchRow[];
  targets: { target: string; value: string; pass: boolean }[];
  notes: string[];
}

export async function tlsBench(
  config: { mib: number; runs: number; logins: number },
): Promise<TlsBenchResult> {
  const result: TlsBenchResult = { rows: [], targets: [], notes: [] };
  const hasOpenssl = await new Deno.Command("openssl", { args: ["version"], stdout: "null" })
    .output().then((o) => o.success, () => false);
  if (!hasOpenssl) {
    result.notes.push("openssl is missing: the TLS rows are skipped");
    return result;
  }
  const dir = await Deno.makeTempDir({ prefix: "fsd-tls-bench-" });
  try {
    const certs = await makeCertificates(dir);
    const root = `${dir}/root`;
    await Deno.mkdir(root);
    await writeFile(`${root}/big.bin`, config.mib);
    const users = `${dir}/users`;
    await Deno.writeTextFile(users, `bench:${await hashPassword("bench-password")}:ro\n`);
    const serve = (extra: string[]) =>
      fsdServe(root, ["--read-only", ...extra], undefined, {
        permissions: [
          "--allow-net=127.0.0.1",
          `--allow-read=${root},${certs.cert},${certs.key},${users}`,
        ],
      });
    const plain = await serve([]);
    const tls = await serve(["--tls-cert", certs.cert, "--tls-key", certs.key]);
    const get = (port: number, extra: string[]) =>
      timed(Deno.execPath(), [
        "run",
        "--quiet",
        `--allow-net=127.0.0.1:${port}`,
        `--allow-read=${certs.ca}`,
        MAIN,
        "get",
        "127.0.0.1",
        String(port),
        "big.bin",
        "-",
        ...extra,
      ]);
    const best: Record<string, number> = {};
    const contenders: [string, () => ReturnType<typeof get>][] = [
      ["plain", () => get(plain.port, [])],
      ["TLS (--ca)", () => get(tls.port, ["--ca", certs.ca])],
      ["TLS (--pin, node:tls)", () => get(tls.port, ["--pin", certs.certFingerprint])],
    ];
    for (let run = 0; run < config.runs; run++) {
      for (const [name, go] of contenders) {
        const { ms } = await go();
        best[name] = Math.min(best[name] ?? Infinity, ms);
      }
    }
    const bytes = config.mib * MIB;
    for (const [name] of contenders) {
      result.rows.push({
        group: "tls",
        what: `fsd get ${config.mib} MiB to stdout, ${name}`,
        bytes,
        ms: best[name],
        extra: `best of ${config.runs}`,
      });
    }
    const ratio = best.plain / best["TLS (--ca)"];
    result.targets.push({
      target: "fsd get over TLS ≥ 0.6× the same without TLS",
      value: `${ratio.toFixed(2)}×`,
      pass: ratio >= 0.6,
    });
    await tls.stop();
    await plain.stop();

    const accounts = await serve(["--users", users]);
    try {
      result.rows.push(...await loginRows(accounts.port, config.logins));
    } finally {
      await accounts.stop();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  return result;
}

/** Median times of connecting, connecting and logging in, and failing to. */
async function loginRows(port: number, count: number): Promise<BenchRow[]> {
  const median = (values: number[]) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)];
  const once = async (login?: [string, string]) => {
    const started = performance.now();
    const client = await FsdClient.connect("127.0.0.1", port);
    try {
      if (login) {
        await client.login(...login).catch((error) => {
          if (!(error instanceof PeerError)) throw error;
        });
      }
    } finally {
      client.close();
    }
    return performance.now() - started;
  };
  const times = {
    connect: [] as number[],
    login: [] as number[],
    name: [] as number[],
    password: [] as number[],
  };
  for (let i = 0; i < count; i++) {
    times.connect.push(await once());
    times.login.push(await once(["bench", "bench-password"]));
    // One failure of each kind, then a success, which forgets them: the throttle never delays these.
    times.name.push(await once(["nobody", "bench-password"]));
    times.password.push(await once(["bench", "wrong"]));
    await once(["bench", "bench-password"]);
  }
  const connect = median(times.connect);
  const login = median(times.login);
  const row = (what: string, ms: number, extra?: string) => ({
    group: "login",
    what,
    bytes: 0,
    ms,
    extra,
  });
  return [
    row("connect and greeting", connect, `median of ${count}`),
    row("connect, greeting and login", login, `the login adds ${(login - connect).toFixed(1)} ms`),
    row("failed login, unknown name", median(times.name), `median of ${count}`),
    row("failed login, wrong password", median(times.password), `median of ${count}`),
  ];
}

async function writeFile(path: string, mib: number): Promise<void> {
  const chunk = new Uint8Array(MIB).map((_, i) => (i * 2654435761) >>> 24);
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  try {
    for (let i = 0; i < mib; i++) {
      for (let at = 0; at < chunk.length;) at += await file.write(chunk.subarray(at));
    }
  } finally {
    file.close();
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      mb: { type: "string", default: "1024" },
      runs: { type: "string", default: "3" },
      logins: { type: "string", default: "10" },
    },
  });
  const result = await tlsBench({
    mib: Number(values.mb),
    runs: Number(values.runs),
    logins: Number(values.logins),
  });
  for (const r of result.rows) {
    const rate = r.bytes ? `, ${(r.bytes / MIB / (r.ms / 1000)).toFixed(1)} MiB/s` : "";
    console.log(
      `${r.group} | ${r.what}: ${(r.ms / 1000).toFixed(3)} s${rate}${
        r.extra ? `, ${r.extra}` : ""
      }`,
    );
  }
  for (const t of result.targets) {
    console.log(`target: ${t.target}: ${t.value} ${t.pass ? "(holds)" : "(NOT met)"}`);
  }
  for (const note of result.notes) console.log(`note: ${note}`);
}
