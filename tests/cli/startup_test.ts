/**
 * Start-up: `fsd` as README's install line makes it (with
 * --unstable-lazy-dynamic-imports) opens only the modules of what it runs.
 * strace lists the source files Deno opens: `fsd --version` opens no
 * command's, and a plain fsd/1 `fsd get` none of TFTP's, HTTP's, the tree
 * walk's or the capture's (they come with `await import` when asked for).
 */

import assert from "node:assert/strict";
import { VERSION } from "../../lib/version.ts";
import { spawnServe } from "../support/cli.ts";
import { randomBytes, tempDir } from "../support/files.ts";
import { installFsd, readmeInstallLine } from "../support/pty.ts";
import { assertTools, needs } from "../support/tools.ts";

const REPO = new URL("../../", import.meta.url).pathname;

/** What a plain fsd/1 download must not load. */
const NOT_FOR_A_PLAIN_GET = [
  /^commands\/client\/(tftp|tftp_get|tftp_put|http|tree_get|tree_put)\.ts$/,
  /^commands\/shared\/capture\.ts$/,
  /^lib\/(tftp\/client|tftp\/channel|tftp\/blocks|http\/client)\.ts$/,
  /^lib\/capture\/(client_capture|conn_trace|ladder|pcap|trace)\.ts$/,
];

/** Runs `fsd ARGS` (the installed launcher) under strace; its stdout and the repository's .ts files it opened. */
async function traced(
  env: Record<string, string>,
  log: string,
  args: string[],
  cwd: string,
): Promise<{ code: number; stdout: string; modules: string[] }> {
  const output = await new Deno.Command("strace", {
    args: ["-f", "-qq", "-e", "trace=openat", "-o", log, "fsd", ...args],
    env,
    cwd,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const opened = await Deno.readTextFile(log);
  // `"REPO...ts"` as openat's path: not the copies under Deno's cache, whose paths contain REPO.
  const quoted = new RegExp(`"${REPO.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}([^"]*\\.ts)"`, "g");
  const modules = [...new Set([...opened.matchAll(quoted)].map((m) => m[1]))].sort();
  return { code: output.code, stdout: new TextDecoder().decode(output.stdout), modules };
}

Deno.test({
  name:
    "startup: with the install line's flags, fsd --version opens no command's module and a plain get none of TFTP, HTTP, tree or capture",
  ...needs("strace"),
  fn: async () => {
    assertTools("strace");
    assert.match(await readmeInstallLine(), / --unstable-lazy-dynamic-imports /);
    await using dir = await tempDir();
    const env = await installFsd(`${dir.path}/root`);
    await Deno.mkdir(`${dir.path}/served`);
    await Deno.mkdir(`${dir.path}/here`);
    const bytes = randomBytes(1024);
    await Deno.writeFile(`${dir.path}/served/one.bin`, bytes);

    const version = await traced(env, `${dir.path}/version.log`, ["--version"], dir.path);
    assert.equal(version.code, 0);
    assert.match(version.stdout, new RegExp(`^fsd ${VERSION.replaceAll(".", "\\.")}\\b`));
    assert.ok(version.modules.includes("main.ts"), version.modules.join(" "));
    assert.deepEqual(version.modules.filter((m) => m.startsWith("commands/")), []);

    await using server = await spawnServe(`${dir.path}/served`);
    const get = await traced(
      env,
      `${dir.path}/get.log`,
      ["get", "127.0.0.1", String(server.port), "one.bin", "-q"],
      `${dir.path}/here`,
    );
    assert.equal(get.code, 0);
    assert.deepEqual(await Deno.readFile(`${dir.path}/here/one.bin`), bytes);
    assert.ok(get.modules.includes("commands/get.ts"), get.modules.join(" "));
    assert.deepEqual(
      get.modules.filter((m) => NOT_FOR_A_PLAIN_GET.some((never) => never.test(m))),
      [],
    );
    await server.stop();
  },
});

/** The modules `commands/NAME.ts` imports before it runs (static imports, not `await import`). */
async function staticGraph(name: string): Promise<string[]> {
  const info = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", `${REPO}commands/${name}.ts`],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  assert.equal(info.code, 0);
  const graph = JSON.parse(new TextDecoder().decode(info.stdout)) as {
    roots: string[];
    modules: {
      specifier: string;
      dependencies?: { code?: { specifier?: string }; isDynamic?: boolean }[];
    }[];
  };
  const bySpecifier = new Map(graph.modules.map((m) => [m.specifier, m]));
  const seen = new Set<string>();
  const walk = (specifier: string) => {
    if (seen.has(specifier)) return;
    seen.add(specifier);
    for (const dependency of bySpecifier.get(specifier)?.dependencies ?? []) {
      const next = dependency.code?.specifier;
      if (next && !dependency.isDynamic) walk(next);
    }
  };
  walk(graph.roots[0]);
  return [...seen];
}

Deno.test("startup: get, put, ls and --version import no node: module; get and put none of the server's file rules", async () => {
  for (const name of ["get", "put", "ls"]) {
    const graph = await staticGraph(name);
    assert.ok(graph.some((m) => m.endsWith(`/commands/${name}.ts`)), graph.join(" "));
    assert.deepEqual(graph.filter((m) => m.startsWith("node:")), [], `fsd ${name}`);
    if (name === "ls") continue; // ls shows names as the sandbox escapes them
    // The listing's lines without the server's sandbox and file calls.
    assert.deepEqual(
      graph.filter((m) => /\/lib\/store\/(sandbox|file_calls|opened|listing)\.ts$/.test(m)),
      [],
      `fsd ${name}`,
    );
  }
  const main = await Deno.readTextFile(`${REPO}main.ts`);
  assert.doesNotMatch(main, /from "node:/);
});

/** What a TFTP get or put never runs: the fsd/1 client, TLS, and (without --pcap/--trace) the capture. */
const NOT_FOR_TFTP =
  /\/(lib\/fsd\/(client|pipeline|window|exchange|packet_conn|greeting)|lib\/net\/(tls|node_socket_conn|connect)|commands\/client\/(options|job_connection|fsd_get|fsd_put)|lib\/capture\/(pcap|ladder|trace|tftp_trace|client_capture)|commands\/shared\/capture)\.ts$/;

Deno.test("startup: get and put, and their TFTP sides, import none of the fsd/1 client, TLS or the capture before they run it", async () => {
  for (const name of ["get", "put", "client/tftp_get", "client/tftp_put"]) {
    const graph = await staticGraph(name);
    assert.ok(graph.some((m) => m.endsWith(`/commands/${name}.ts`)), graph.join(" "));
    assert.deepEqual(graph.filter((m) => NOT_FOR_TFTP.test(m)), [], `commands/${name}.ts`);
  }
  // The check itself: fsd/1's side imports the fsd/1 client.
  assert.ok((await staticGraph("client/fsd_get")).some((m) => NOT_FOR_TFTP.test(m)));
});

/** What a client over fsd/1 runs only when a flag asks for it: TLS (--tls, --ca, --pin) and the password prompt. */
const ONLY_WHEN_ASKED = /\/(lib\/net\/(tls|node_socket_conn)|commands\/shared\/terminal)\.ts$/;

Deno.test("startup: fsd/1's get, put and ls import neither TLS nor the password prompt before a flag asks for them", async () => {
  for (const name of ["client/fsd_get", "client/fsd_put", "ls"]) {
    const graph = await staticGraph(name);
    assert.ok(graph.some((m) => m.endsWith(`/commands/${name}.ts`)), graph.join(" "));
    assert.deepEqual(graph.filter((m) => ONLY_WHEN_ASKED.test(m)), [], `commands/${name}.ts`);
    // A --pin is still read (and refused when malformed) with the flags.
    assert.ok(graph.some((m) => m.endsWith("/lib/net/tls_identity.ts")), `commands/${name}.ts`);
  }
  // The check itself: the server's side, which listens with TLS, imports it.
  assert.ok((await staticGraph("serve")).some((m) => ONLY_WHEN_ASKED.test(m)));
});

/** What `fsd echo HOST PORT` never runs: the servers, their accounts and limits, and (without --pcap) the capture. */
const NOT_FOR_THE_ECHO_CLIENT =
  /\/(lib\/echo\/(server|udp_server|login|answer)|lib\/auth\/\w+|lib\/net\/(accept_loop|limits)|lib\/capture\/\w+|commands\/shared\/capture|commands\/echo\/serve)\.ts$/;

Deno.test("startup: fsd echo's client imports none of the echo servers, the accounts or the capture before it runs them", async () => {
  for (const name of ["echo", "echo/client"]) {
    const graph = await staticGraph(name);
    assert.ok(graph.some((m) => m.endsWith(`/commands/${name}.ts`)), graph.join(" "));
    assert.deepEqual(
      graph.filter((m) => NOT_FOR_THE_ECHO_CLIENT.test(m)),
      [],
      `commands/${name}.ts`,
    );
  }
  // The check itself: the server's side imports the servers.
  assert.ok((await staticGraph("echo/serve")).some((m) => NOT_FOR_THE_ECHO_CLIENT.test(m)));
});
