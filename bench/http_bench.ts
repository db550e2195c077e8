/**
 * The HTTP face against the HTTP servers people reach for (bench/bench.ts
 * section 13, or alone): a large download with curl from `fsd serve
 * --http-only`, from nginx (sendfile on) and from `python3 -m http.server`;
 * a large upload with `curl -T` to the HTTP face against `fsd put` over
 * fsd/1. Each the real program on 127.0.0.1, best of --runs.
 * Targets: downloads at least as fast as python3's server and at least 0.9x
 * nginx; uploads within 10% of fsd put.
 *
 *   deno run -A bench/http_bench.ts [--mb 1024] [--runs 3]
 */

import { parseArgs } from "node:util";
import { fsdServe, MAIN, memoryKb, type Service, service, timed } from "./support.ts";
import type { BenchRow, TlsBenchResult as Result } from "./tls_bench.ts";

const MIB = 1024 * 1024;

async function have(command: string): Promise<boolean> {
  return await new Deno.Command("sh", { args: ["-c", `command -v ${command}`], stdout: "null" })
    .output().then((o) => o.success, () => false);
}

/** nginx serving `root` with sendfile on a port it picks from `port`; stopped with its pid file. */
async function startNginx(root: string, dir: string): Promise<Service | undefined> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 20000);
    const conf = `${dir}/nginx.conf`;
    await Deno.writeTextFile(
      conf,
      `daemon off; user root; pid ${dir}/nginx.pid; error_log ${dir}/nginx-error.log;
events { worker_connections 64; }
http { access_log off; sendfile on; tcp_nopush on;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fcgi; uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  server { listen 127.0.0.1:${port}; root ${root}; } }
`,
    );
    const child = new Deno.Command("nginx", {
      args: ["-c", conf, "-e", `${dir}/nginx-error.log`],
      stdout: "null",
      stderr: "null",
    }).spawn();
    // nginx says nothing when ready: connect until it answers (bounded).
    for (let i = 0; i < 50; i++) {
      const ok = await Deno.connect({ hostname: "127.0.0.1", port }).then((c) => {
        c.close();
        return true;
      }, () => false);
      if (ok) {
        return {
          child,
          port,
          async stop() {
            child.kill("SIGTERM");
            return await child.status;
          },
        };
      }
      const exited = await Promise.race([
        child.status.then(() => true),
        new Promise<false>((r) => setTimeout(() => r(false), 100)),
      ]);
      if (exited) break;
    }
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
    await child.status;
  }
  return undefined;
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

/** Whether two files hold the same bytes (cmp). */
async function same(a: string, b: string): Promise<boolean> {
  return (await new Deno.Command("cmp", { args: ["-s", a, b] }).output()).success;
}

export async function httpBench(config: { mib: number; runs: number }): Promise<Result> {
  const result: Result = { rows: [], targets: [], notes: [] };
  if (!await have("curl")) {
    result.notes.push("curl missing: the HTTP rows are skipped");
    return result;
  }
  const dir = await Deno.makeTempDir({ prefix: "fsd-http-bench-" });
  const root = `${dir}/root`;
  const work = `${dir}/work`;
  await Deno.mkdir(root);
  await Deno.mkdir(work);
  const bytes = config.mib * MIB;
  const services: Service[] = [];
  try {
    const file = await Deno.open(`${root}/big.bin`, { write: true, create: true });
    const chunk = crypto.getRandomValues(new Uint8Array(MIB / 16)); // 64 KiB, repeated
    for (let i = 0; i < bytes / chunk.length; i++) await file.write(chunk);
    file.close();
    const http = await fsdServe(root, ["--http-only", "--max-upload", "0"], undefined, {
      ready: /HTTP server listening on \S+ port (\d+)/,
    });
    services.push(http);
    const fsd1 = await fsdServe(root, ["--max-upload", "0"]);
    services.push(fsd1);
    const contenders: { what: string; run: () => Promise<{ ms: number }> }[] = [
      {
        what: "curl GET from fsd serve --http-only",
        run: () =>
          timed("curl", [
            "-s",
            "-f",
            "-o",
            `${work}/a.bin`,
            `http://127.0.0.1:${http.port}/big.bin`,
          ]),
      },
      {
        what: "curl -T to fsd serve --http-only",
        run: async () => {
          await Deno.remove(`${root}/up.bin`).catch(() => {});
          return await timed("curl", [
            "-s",
            "-f",
            "-T",
            `${root}/big.bin`,
            `http://127.0.0.1:${http.port}/up.bin`,
          ]);
        },
      },
      {
        what: "fsd put over fsd/1 (the same file)",
        run: async () => {
          await Deno.remove(`${root}/up1.bin`).catch(() => {});
          return await timed(Deno.execPath(), [
            "run",
            "--quiet",
            `--allow-net=127.0.0.1:${fsd1.port}`,
            `--allow-read=${root}/big.bin`,
            MAIN,
            "put",
            "127.0.0.1",
            String(fsd1.port),
            `${root}/big.bin`,
            "up1.bin",
          ]);
        },
      },
    ];
    if (await have("nginx") && Deno.uid?.() === 0) {
      const nginx = await startNginx(root, dir);
      if (nginx) {
        services.push(nginx);
        contenders.push({
          what: "curl GET from nginx (sendfile on)",
          run: () =>
            timed("curl", [
              "-s",
              "-f",
              "-o",
              `${work}/n.bin`,
              `http://127.0.0.1:${nginx.port}/big.bin`,
            ]),
        });
      } else result.notes.push("nginx did not start: its row is skipped");
    } else result.notes.push("nginx missing (or not root): its row is skipped");
    if (await have("python3")) {
      const python = await service("python3", [
        "-u",
        "-m",
        "http.server",
        "0",
        "--bind",
        "127.0.0.1",
        "--directory",
        root,
      ], /port (\d+)/);
      services.push(python);
      contenders.push({
        what: "curl GET from python3 -m http.server",
        run: () =>
          timed("curl", [
            "-s",
            "-f",
            "-o",
            `${work}/p.bin`,
            `http://127.0.0.1:${python.port}/big.bin`,
          ]),
      });
    } else result.notes.push("python3 missing: its row is skipped");
    const best = new Map<string, number>();
    for (let round = 0; round < config.runs; round++) {
      for (const c of contenders) {
        const { ms } = await c.run();
        best.set(c.what, Math.min(best.get(c.what) ?? Infinity, ms));
        // The HTTP face's copies must be byte for byte the file.
        for (const copy of [`${work}/a.bin`, `${root}/up.bin`]) {
          if (round === 0 && await exists(copy) && !await same(copy, `${root}/big.bin`)) {
            throw new Error(`${copy} differs from the file sent`);
          }
        }
        for (const name of ["a.bin", "n.bin", "p.bin"]) {
          await Deno.remove(`${work}/${name}`).catch(() => {});
        }
      }
    }
    const peakMb = (await memoryKb(http.child.pid, "VmHWM")) / 1024;
    for (const [what, ms] of best) {
      const extra = what.includes("fsd serve --http-only")
        ? `byte-exact (cmp); the HTTP server's peak RSS over every run: ${peakMb.toFixed(0)} MB`
        : undefined;
      result.rows.push({ group: "http", what, bytes, ms, extra } satisfies BenchRow);
    }
    const rate = (what: string) => bytes / MIB / ((best.get(what) ?? NaN) / 1000);
    const ours = rate("curl GET from fsd serve --http-only");
    const python = rate("curl GET from python3 -m http.server");
    const nginx = rate("curl GET from nginx (sendfile on)");
    if (!Number.isNaN(python)) {
      result.targets.push({
        target: "HTTP download ≥ 1× python3 -m http.server",
        value: `${(ours / python).toFixed(2)}×`,
        pass: ours >= python,
      });
    }
    if (!Number.isNaN(nginx)) {
      result.targets.push({
        target: "HTTP download ≥ 0.9× nginx (sendfile)",
        value: `${(ours / nginx).toFixed(2)}×`,
        pass: ours >= 0.9 * nginx,
      });
    }
    const up = best.get("curl -T to fsd serve --http-only")!;
    const put = best.get("fsd put over fsd/1 (the same file)")!;
    result.targets.push({
      target: "HTTP upload (curl -T) within 10% of fsd put",
      value: `${(up / put).toFixed(2)}× its time`,
      pass: up <= 1.1 * put,
    });
  } finally {
    for (const s of services) await s.stop();
    await Deno.remove(dir, { recursive: true });
  }
  return result;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { mb: { type: "string" }, runs: { type: "string" } },
  });
  const result = await httpBench({
    mib: Number(values.mb ?? 1024),
    runs: Number(values.runs ?? 3),
  });
  for (const r of result.rows) {
    console.log(
      `${r.what}: ${(r.ms / 1000).toFixed(2)} s, ${
        (r.bytes / MIB / (r.ms / 1000)).toFixed(0)
      } MiB/s${r.extra ? ` (${r.extra})` : ""}`,
    );
  }
  for (const t of result.targets) {
    console.log(`${t.target}: ${t.value} ${t.pass ? "(holds)" : "(NOT met)"}`);
  }
  for (const n of result.notes) console.log(`note: ${n}`);
}
