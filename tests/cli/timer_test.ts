/**
 * lib/timer.ts: deadlines without Deno's global timers (which load
 * node:timers, 11 to 17 ms, on first read), and the client commands that
 * start without reading them.
 */

import assert from "node:assert/strict";
import { after, Deadline, every, orAfter, sleep, timerCounts } from "../../lib/timer.ts";
import { rw, spawnFsd, spawnServe, spawnServeWithHttp } from "../support/cli.ts";
import { randomBytes, tempDir } from "../support/files.ts";
import { rawRequest } from "../support/http.ts";
import { makeCertificates } from "../support/tls_certs.ts";
import { needs } from "../support/tools.ts";

const FIXTURE = new URL("../support/fixtures/global_timers.ts", import.meta.url).pathname;
const TIMER = new URL("../../lib/timer.ts", import.meta.url).href;

Deno.test("timer: timers run in the order they are due, and a cancelled one never runs", async () => {
  const ran: string[] = [];
  const { promise: done, resolve } = Promise.withResolvers<void>();
  after(30, () => ran.push("30"));
  after(10, () => ran.push("10"));
  const cancelled = after(20, () => ran.push("20"));
  after(30, () => ran.push("30 too"));
  after(40, () => {
    ran.push("40");
    resolve();
  });
  cancelled.cancel();
  cancelled.cancel(); // twice is harmless
  await done;
  assert.deepEqual(ran, ["10", "30", "30 too", "40"]);
  assert.equal(timerCounts().timers, 0);
});

Deno.test("timer: every repeats until cancelled, from inside its own run too", async () => {
  let runs = 0;
  const { promise: done, resolve } = Promise.withResolvers<void>();
  const ticking = every(5, () => {
    runs++;
    if (runs === 3) {
      ticking.cancel();
      after(30, resolve); // long enough for a fourth run, were one coming
    }
  });
  await done;
  assert.equal(runs, 3);
  assert.equal(timerCounts().timers, 0);
});

Deno.test("timer: a thousand timers of one delay share one signal, and cancelled leave the queue at once", () => {
  const before = timerCounts().signals;
  const timers = Array.from({ length: 1000 }, () => after(60_000, () => assert.fail("ran")));
  assert.equal(timerCounts().timers, 1000);
  assert.ok(timerCounts().signals <= before + 1, JSON.stringify(timerCounts()));
  for (const timer of timers.slice(0, 500)) timer.cancel();
  assert.equal(timerCounts().timers, 500);
  for (const timer of timers) timer.cancel();
  assert.equal(timerCounts().timers, 0);
  // The signal is let go of but kept: the next timers of that delay take it up again.
  const again = Array.from({ length: 1000 }, () => after(60_000, () => assert.fail("ran")));
  assert.ok(timerCounts().signals <= before + 1, JSON.stringify(timerCounts()));
  for (const timer of again) timer.cancel();
});

Deno.test("timer: orAfter gives the result if it comes in time, else the late value; a rejection passes; no timer is left", async () => {
  assert.equal(await orAfter(Promise.resolve("ok"), 60_000, "late"), "ok");
  assert.equal(timerCounts().timers, 0); // the minute-long timer was cancelled, not left waiting
  assert.equal(await orAfter(new Promise<string>(() => {}), 10, "late"), "late");
  await assert.rejects(orAfter(Promise.reject(new Error("broken")), 60_000, "late"), /broken/);
  assert.equal(timerCounts().timers, 0);
});

Deno.test("timer: a timer past 2^31 ms (where a signal, as setTimeout, fires at once) waits without spinning", async () => {
  const before = timerCounts().made;
  const far = after(2 ** 32, () => assert.fail("ran"));
  const farther = new Deadline(() => assert.fail("due"));
  farther.in(3e9);
  await sleep(100);
  // The far timer's one signal and the 100 ms one: not a new signal every few milliseconds.
  assert.ok(timerCounts().made - before <= 2, `${timerCounts().made - before} signals made`);
  far.cancel();
  farther.stop();
  assert.equal(timerCounts().timers, 0);
});

Deno.test("timer: a Deadline moved later a thousand times keeps one timer and is due once, at its last setting", async () => {
  const { promise: due, resolve } = Promise.withResolvers<number>();
  let runs = 0;
  const deadline = new Deadline(() => {
    runs++;
    resolve(performance.now());
  });
  for (let i = 0; i < 1000; i++) {
    deadline.in(30);
    assert.equal(timerCounts().timers, 1);
  }
  await sleep(20);
  const last = performance.now() + 30; // past the timer armed first: it must arm itself again
  deadline.set(last);
  const at = await due;
  assert.ok(at >= last, `due at ${at}, before its deadline ${last}`);
  assert.equal(runs, 1);
  assert.equal(timerCounts().timers, 0); // not set again: nothing waits
});

Deno.test("timer: a Deadline set earlier is due at the earlier time; cleared it is not due; stopped it never is", async () => {
  const order: string[] = [];
  const { promise: done, resolve } = Promise.withResolvers<void>();
  const early = new Deadline(() => order.push("early"));
  early.in(60_000);
  early.in(10); // earlier than its timer: a new timer at once
  const cleared = new Deadline(() => order.push("cleared"));
  cleared.in(5);
  cleared.clear();
  const stopped = new Deadline(() => order.push("stopped"));
  stopped.in(5);
  stopped.stop();
  stopped.in(5); // no effect once stopped
  const again = new Deadline(() => {
    order.push("set again");
    resolve();
  });
  again.in(5);
  again.clear();
  again.in(40);
  await done;
  assert.deepEqual(order, ["early", "set again"]);
  assert.equal(timerCounts().timers, 0); // the lapsed ones and the stopped one left nothing behind
});

Deno.test("timer: a waiting timer keeps the process alive; a cancelled one does not hold it", async () => {
  const run = async (code: string) => {
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["eval", `import { after } from "${TIMER}"; ${code}`],
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(20_000), // a held process fails the test instead of hanging it
    }).output();
    return { code: output.code, out: new TextDecoder().decode(output.stdout).trim() };
  };
  assert.deepEqual(await run(`after(50, () => console.log("ran"));`), { code: 0, out: "ran" });
  assert.deepEqual(
    await run(`after(3_600_000, () => console.log("ran")).cancel(); console.log("ended");`),
    { code: 0, out: "ended" },
  );
});

/** Runs fsd through the fixture that reports every read of a global timer; `permissions` beside read and write in `work`. */
async function watched(work: string, args: string[], permissions = ["--allow-net=127.0.0.1"]) {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", "--no-prompt", ...permissions, ...rw(work), FIXTURE, ...args],
    cwd: work,
    stdout: "null",
    stderr: "piped",
  }).output();
  return { code: output.code, stderr: new TextDecoder().decode(output.stderr) };
}

/** Each command exits 0 without reading a global timer. */
async function assertNoGlobalTimers(work: string, commands: string[][], permissions?: string[]) {
  for (const args of commands) {
    const result = await watched(work, args, permissions);
    assert.equal(result.code, 0, `fsd ${args.join(" ")}: ${result.stderr}`);
    assert.doesNotMatch(result.stderr, /global timer read/, `fsd ${args.join(" ")}`);
  }
}

Deno.test("timer: the fixture reports a read of a global timer", async () => {
  const self = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", FIXTURE, "--self-check"],
    stderr: "piped",
  }).output();
  assert.match(new TextDecoder().decode(self.stderr), /^global timer read: clearTimeout /);
});

Deno.test("timer: fsd get, put, ls, get -r and put -r, over fsd/1, HTTP and TFTP, never read Deno's global timers", async () => {
  await using dir = await tempDir();
  const served = `${dir.path}/served`;
  const work = `${dir.path}/work`;
  await Deno.mkdir(`${served}/tree/a`, { recursive: true });
  await Deno.mkdir(work);
  await Deno.writeFile(`${served}/one`, randomBytes(1024));
  await Deno.writeFile(`${served}/big`, randomBytes(3 << 20));
  for (const name of ["x", "y"]) await Deno.writeFile(`${served}/tree/a/${name}`, randomBytes(99));
  await Deno.writeFile(`${work}/up`, randomBytes(2048));
  await using server = await spawnServeWithHttp(served, ["--tftp", "0"]);
  const port = String(server.port);
  const http = `http://127.0.0.1:${server.httpPort}`;
  const tftpLine = await server.waitForLine(/^TFTP server listening on /);
  const tftp = `tftp://127.0.0.1:${/port (\d+)/.exec(tftpLine)![1]}`;

  await assertNoGlobalTimers(work, [
    ["get", "127.0.0.1", port, "one"],
    ["get", "127.0.0.1", port, "big"],
    ["get", "127.0.0.1", port, "one", "tree/a/x", "-o", "many"],
    ["ls", "127.0.0.1", port],
    ["put", "127.0.0.1", port, "up"],
    ["get", "-r", "127.0.0.1", port, "tree"],
    ["put", "-r", "127.0.0.1", port, "tree", "tree2"],
    ["get", `${http}/big`, "big-over-http"],
    ["put", `${http}/tree/`, "up"],
    // TFTP on Deno's socket: the channel's deadline timer.
    ["get", `${tftp}/big`, "big-over-tftp"],
    ["put", `${tftp}/up-over-tftp`, "up"],
  ]);
  assert.deepEqual(
    await Deno.readFile(`${work}/tree/a/y`),
    await Deno.readFile(`${served}/tree/a/y`),
  );
  // TFTP on the blocking socket (--allow-ffi, as installed), one block at a time: waits in
  // slices, turning the event loop between them.
  await assertNoGlobalTimers(work, [
    ["get", `${tftp}/big`, "big-blocking", "--blksize", "512", "--window", "1"],
    ["put", `${tftp}/up-blocking`, "big-blocking", "--blksize", "512", "--window", "1"],
  ], ["--allow-net=127.0.0.1", "--allow-ffi"]);
  assert.deepEqual(
    await Deno.readFile(`${served}/up-blocking`),
    await Deno.readFile(`${served}/big`),
  );
});

Deno.test({
  name: "timer: fsd get over TLS, with --ca and with --pin, never reads Deno's global timers",
  ...needs("openssl"),
  async fn() {
    await using dir = await tempDir();
    const served = `${dir.path}/served`;
    const work = `${dir.path}/work`;
    await Deno.mkdir(served);
    await Deno.mkdir(work);
    await Deno.writeFile(`${served}/one`, randomBytes(1024));
    const certs = await makeCertificates(dir.path);
    await using server = await spawnServe(
      served,
      0,
      ["--tls-cert", certs.cert, "--tls-key", certs.key],
      ["--allow-net", `--allow-read=${served},${dir.path}`, `--allow-write=${served}`],
    );
    const port = String(server.port);
    await assertNoGlobalTimers(work, [
      ["get", "127.0.0.1", port, "one", "by-ca", "--ca", certs.ca],
      ["get", "127.0.0.1", port, "one", "by-pin", "--pin", certs.certFingerprint],
    ], ["--allow-net=127.0.0.1", `--allow-read=${dir.path}`]);
    assert.deepEqual(await Deno.readFile(`${work}/by-pin`), await Deno.readFile(`${served}/one`));
  },
});

Deno.test("timer: fsd echo's client, once and with --count, over TCP and UDP, never reads Deno's global timers", async () => {
  await using dir = await tempDir();
  const serve = (udp: string[]) =>
    spawnFsd(
      ["echo", "serve", "0", ...udp, "--host", "127.0.0.1"],
      ["--allow-net=127.0.0.1"],
      /listening on /,
    );
  await using tcp = await serve([]);
  await using udp = await serve(["--udp"]);
  const count = ["--count", "3", "--interval", "0.05", "--timeout", "5"];
  await assertNoGlobalTimers(dir.path, [
    ["echo", "127.0.0.1", String(tcp.port), "hello"],
    ["echo", "127.0.0.1", String(tcp.port), "hello", ...count],
    ["echo", "127.0.0.1", String(udp.port), "hello", "--udp"],
    ["echo", "127.0.0.1", String(udp.port), "hello", "--udp", ...count],
  ]);
});

Deno.test("timer: fsd serve with timeouts past 2^31 ms (24.8 days) serves; none fires at once", async () => {
  await using dir = await tempDir();
  await Deno.writeTextFile(`${dir.path}/one`, "a".repeat(1024));
  const days35 = "3000000";
  await using server = await spawnServeWithHttp(dir.path, [
    "--request-timeout",
    days35,
    "--idle-timeout",
    days35,
    "--login-grace",
    days35,
  ]);
  // A request head that comes in two pieces: the request timeout runs between them.
  const reply = await rawRequest(server.httpPort, [
    "GET /one HTTP/1.1\r\n",
    "Host: x\r\nConnection: close\r\n\r\n",
  ]);
  assert.equal(reply.status, 200, reply.text);
  assert.ok(reply.text.endsWith("\r\n\r\n" + "a".repeat(1024)), reply.text.slice(0, 300));
  await server.stop();
  assert.doesNotMatch(await server.stderr, /TimeoutOverflowWarning/);
});

Deno.test("timer: no module of fsd reads a global timer but the two unref'd intervals", async () => {
  // lib/timer.ts's timers keep the process alive while they wait (a signal's listener); the
  // accept watchdog's probe and the pcap writer's flush must not, so they keep Deno.unrefTimer.
  const allowed = new Set(["lib/net/accept_watchdog.ts", "lib/capture/pcap.ts"]);
  const root = new URL("../../", import.meta.url).pathname;
  const found: string[] = [];
  const walk = async (dir: string) => {
    for await (const entry of Deno.readDir(`${root}${dir}`)) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory) await walk(path);
      else if (path.endsWith(".ts") && !allowed.has(path) && path !== "lib/timer.ts") {
        const code = (await Deno.readTextFile(`${root}${path}`)).replace(
          /\/\/.*$|\/\*[\s\S]*?\*\//gm,
          "",
        );
        if (/(?<![#.\w])(setTimeout|clearTimeout|setInterval|clearInterval)\b/.test(code)) {
          found.push(path);
        }
      }
    }
  };
  for (const dir of ["lib", "commands"]) await walk(dir);
  if (await Deno.readTextFile(`${root}main.ts`).then((t) => /\bsetTimeout|setInterval\b/.test(t))) {
    found.push("main.ts");
  }
  assert.deepEqual(found, []);
});
