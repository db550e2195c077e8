/**
 * TFTP interoperability with the clients and servers people have:
 * fsd's server (the CLI, with its documented permissions) against
 * tftp-hpa's `tftp`, `atftp` (blksize, windowsize), `curl tftp://` and
 * busybox `tftp`; fsd's client against tftpd-hpa and atftpd. Byte for byte,
 * with the sizes where block arithmetic goes wrong, and past the 16-bit
 * block-number rollover. A missing tool ignores its test, with a note
 * (tests/support/tools.ts); under CI it fails.
 */

import assert from "node:assert/strict";
import dgram from "node:dgram";
import { runFsd, spawnFsd } from "../support/cli.ts";
import { randomBytes, tempDir } from "../support/files.ts";
import { assertTools, needs } from "../support/tools.ts";

const SIZES = [0, 511, 512, 513, 1024, 1536];
/** Past 65535 blocks of 8 bytes: block numbers roll over to 0. */
const ROLLOVER_SIZE = 8 * 65536 + 10;
const TOOL_TIMEOUT = "120";

function exists(path: string | undefined): path is string {
  if (!path) return false;
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

async function tool(command: string, args: string[], cwd?: string) {
  const output = await new Deno.Command("timeout", {
    args: [TOOL_TIMEOUT, command, ...args],
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    out: decoder.decode(output.stdout) + decoder.decode(output.stderr),
  };
}

type Op = "get" | "put";

interface Client {
  command: string;
  /** The arguments that get REMOTE into LOCAL, or put LOCAL as REMOTE. */
  args(op: Op, port: number, remote: string, local: string, blksize?: number): string[];
}

const HOST = "127.0.0.1";

/** `[flag, value]` when a block size is asked for. */
const block = (flag: string, blksize?: number, value = (n: number) => `${n}`) =>
  blksize ? [flag, value(blksize)] : [];

const CLIENTS: Record<string, Client> = {
  "tftp-hpa": {
    command: "tftp",
    args: (op, port, remote, local) => [
      ...["-m", "binary", HOST, `${port}`, "-c", op],
      ...(op === "get" ? [remote, local] : [local, remote]),
    ],
  },
  atftp: {
    command: "atftp",
    args: (op, port, remote, local, blksize) => [
      ...block("--option", blksize, (n) => `blksize ${n}`),
      ...[op === "get" ? "-g" : "-p", "-r", remote, "-l", local, HOST, `${port}`],
    ],
  },
  curl: {
    command: "curl",
    args: (op, port, remote, local, blksize) => [
      "-sS",
      ...block("--tftp-blksize", blksize),
      ...[op === "get" ? "-o" : "-T", local, `tftp://${HOST}:${port}/${remote}`],
    ],
  },
  busybox: {
    command: "busybox",
    args: (op, port, remote, local, blksize) => [
      "tftp",
      ...block("-b", blksize),
      ...[op === "get" ? "-g" : "-p", "-r", remote, "-l", local, HOST, `${port}`],
    ],
  },
};

/**
 * `fsd serve DIR 0 --tftp-only` with the documented permissions (or others:
 * `--allow-all`, as README installs it).
 */
function serveTftp(
  dir: string,
  extra: string[] = [],
  permissions = ["--allow-net", `--allow-read=${dir}`, `--allow-write=${dir}`],
) {
  return spawnFsd(
    ["serve", dir, "0", "--host", HOST, "--tftp-only", "--tftp-timeout", "0.5", ...extra],
    permissions,
    /^TFTP server listening on /,
  );
}

async function sameFile(actual: string, expected: Uint8Array, label: string, out: string) {
  let got: Uint8Array;
  try {
    got = await Deno.readFile(actual);
  } catch {
    throw new Error(`${label}: no file (${out.trim()})`);
  }
  assert.equal(got.length, expected.length, `${label}: length (${out.trim()})`);
  assert.ok(got.every((b, i) => b === expected[i]), `${label}: content differs`);
}

for (const [name, client] of Object.entries(CLIENTS)) {
  Deno.test({
    name: `interop: fsd's TFTP server with ${name}: get and put of 0..1536 bytes`,
    ...needs(name),
    fn: async (t) => {
      assertTools(name);
      await using served = await tempDir();
      await using local = await tempDir();
      await using server = await serveTftp(served.path);
      const blocks = name === "tftp-hpa" ? [undefined] : [undefined, 1024];
      for (const blksize of blocks) {
        await t.step(`blksize ${blksize ?? "default"}`, async () => {
          for (const size of SIZES) {
            const data = randomBytes(size, size + 3);
            const remote = `f${size}-${blksize ?? 512}`;
            await Deno.writeFile(`${served.path}/${remote}`, data);
            const localFile = `${local.path}/${remote}`;
            const run = (op: Op, name: string) =>
              tool(
                client.command,
                client.args(op, server.port, name, localFile, blksize),
                local.path,
              );
            const got = await run("get", remote);
            await sameFile(localFile, data, `get ${remote}`, got.out);
            const put = await run("put", `up-${remote}`);
            await sameFile(`${served.path}/up-${remote}`, data, `put ${remote}`, put.out);
          }
        });
      }
    },
  });
}

/** What each client prints for ERROR 1 and ERROR 6, and the flag that shows it. */
const CONVENTIONAL: Record<string, { tool: string; notFound: RegExp; exists: RegExp }> = {
  "tftp-hpa": {
    tool: "tftp-hpa",
    notFound: /^Error code 1: File not found$/m,
    exists: /^Error code 6: File already exists$/m,
  },
  atftp: {
    tool: "atftp",
    notFound: /<File not found>/,
    exists: /<File already exists>/,
  },
  curl: {
    tool: "curl",
    notFound: /TFTP error: File not found$/m,
    exists: /TFTP error: File already exists$/m,
  },
};

for (const [name, expected] of Object.entries(CONVENTIONAL)) {
  Deno.test({
    name:
      `interop: ${name} shows RFC 1350's conventional error texts from fsd; the detail is logged`,
    ...needs(expected.tool),
    fn: async () => {
      assertTools(expected.tool);
      await using served = await tempDir();
      await using local = await tempDir();
      await Deno.writeTextFile(`${served.path}/taken`, "x");
      await Deno.writeTextFile(`${local.path}/taken`, "y");
      await using server = await serveTftp(served.path);
      const client = CLIENTS[name];
      const verbose = name === "curl" ? ["-v"] : [];
      const run = (op: Op, remote: string) =>
        tool(client.command, [
          ...verbose,
          ...client.args(op, server.port, remote, `${local.path}/${remote}`),
        ], local.path);
      const missing = await run("get", "missing");
      assert.match(missing.out, expected.notFound);
      const taken = await run("put", "taken");
      assert.match(taken.out, expected.exists);
      assert.equal(await Deno.readTextFile(`${served.path}/taken`), "x");
      await server.waitForLine(/RRQ "missing": refused with error 1: file not found: missing$/);
      await server.waitForLine(/WRQ "taken": refused with error 6: file already exists: taken$/);
    },
  });
}

for (const name of ["curl", "atftp"]) {
  Deno.test({
    name: `interop: ${name} gets a file past the block-number rollover at blksize 8`,
    ...needs(name),
    fn: async () => {
      assertTools(name);
      const client = CLIENTS[name];
      await using served = await tempDir();
      await using local = await tempDir();
      await using server = await serveTftp(served.path);
      const data = randomBytes(ROLLOVER_SIZE, 11);
      await Deno.writeFile(`${served.path}/roll`, data);
      const run = (op: Op, remote: string) =>
        tool(client.command, client.args(op, server.port, remote, `${local.path}/roll`, 8));
      const got = await run("get", "roll");
      await sameFile(`${local.path}/roll`, data, "rollover get", got.out);
      if (name === "atftp") {
        const put = await run("put", "roll-up");
        await sameFile(`${served.path}/roll-up`, data, "rollover put", put.out);
      }
    },
  });
}

Deno.test({
  name: "interop: tftp-hpa in netascii mode gets and puts text byte for byte",
  ...needs("tftp-hpa"),
  fn: async () => {
    assertTools("tftp-hpa");
    await using served = await tempDir();
    await using local = await tempDir();
    await using server = await serveTftp(served.path);
    const content = "line one\nline two\r\nbare \r cr\n".repeat(100);
    await Deno.writeTextFile(`${served.path}/t.txt`, content);
    const base = ["-m", "ascii", HOST, `${server.port}`, "-c"];
    const got = await tool("tftp", [...base, "get", "t.txt", `${local.path}/t.txt`]);
    assert.equal(await Deno.readTextFile(`${local.path}/t.txt`), content, got.out);
    const put = await tool("tftp", [...base, "put", `${local.path}/t.txt`, "up.txt"]);
    assert.equal(await Deno.readTextFile(`${served.path}/up.txt`), content, put.out);
  },
});

Deno.test({
  name: "interop: atftp with windowsize 4 and 16 against fsd's server",
  ...needs("atftp"),
  fn: async () => {
    assertTools("atftp");
    await using served = await tempDir();
    await using local = await tempDir();
    await using server = await serveTftp(served.path);
    const data = randomBytes(300_000, 5);
    await Deno.writeFile(`${served.path}/w`, data);
    for (const window of [4, 16]) {
      const out = `${local.path}/w${window}`;
      const got = await tool("atftp", [
        "--option",
        "blksize 1024",
        "--option",
        `windowsize ${window}`,
        "-g",
        "-r",
        "w",
        "-l",
        out,
        HOST,
        `${server.port}`,
      ]);
      await sameFile(out, data, `windowsize ${window}`, got.out);
    }
    await server.waitForLine(/windowsize 16\)/);
  },
});

Deno.test({
  name:
    "interop: fsd's TFTP server as installed (--allow-all: on local file systems each block is read straight into its datagram) with curl, tftp-hpa and atftp's windows, past the rollover",
  ...needs("curl", "tftp-hpa", "atftp"),
  fn: async () => {
    assertTools("curl", "tftp-hpa", "atftp");
    await using served = await tempDir();
    await using local = await tempDir();
    await using server = await serveTftp(served.path, [], ["--allow-all"]);
    const sizes = [...SIZES, 65464, 2 * 65464 + 1, 300_000];
    for (const size of sizes) {
      const data = randomBytes(size, size + 7);
      await Deno.writeFile(`${served.path}/f${size}`, data);
      const name = `f${size}`;
      const port = server.port;
      // Each client, its program, and its arguments to get `name` into `file`.
      const gets: [string, string, (file: string) => string[]][] = [
        ["tftp-hpa", "tftp", (file) => CLIENTS["tftp-hpa"].args("get", port, name, file)],
        ["curl 1024", "curl", (file) => CLIENTS.curl.args("get", port, name, file, 1024)],
        ["curl 65464", "curl", (file) => CLIENTS.curl.args("get", port, name, file, 65464)],
        ["atftp windowsize 4", "atftp", (file) => [
          ...["--option", "blksize 1024", "--option", "windowsize 4"],
          ...["-g", "-r", name, "-l", file, HOST, `${port}`],
        ]],
      ];
      for (const [label, command, args] of gets) {
        const file = `${local.path}/got`;
        const got = await tool(command, args(file), local.path);
        await sameFile(file, data, `${label}, ${size} bytes`, got.out);
        await Deno.remove(file);
      }
    }
    const roll = randomBytes(ROLLOVER_SIZE, 13);
    await Deno.writeFile(`${served.path}/roll`, roll);
    const file = `${local.path}/roll`;
    const got = await tool("curl", CLIENTS.curl.args("get", server.port, "roll", file, 8));
    await sameFile(file, roll, "rollover at blksize 8", got.out);
  },
});

/** A UDP port free right now on 127.0.0.1; another process may take it before the server binds it. */
async function freeUdpPort(): Promise<number> {
  const socket = dgram.createSocket("udp4");
  await new Promise<void>((resolve) => socket.bind(0, HOST, () => resolve()));
  const port = socket.address().port;
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

/** Whether something holds UDP `port` on 127.0.0.1 (binding it fails with EADDRINUSE). */
async function udpPortTaken(port: number): Promise<boolean> {
  const socket = dgram.createSocket("udp4");
  const taken = await new Promise<boolean>((resolve, reject) => {
    socket.once("error", (error: NodeJS.ErrnoException) => {
      if (error.code === "EADDRINUSE") resolve(true);
      else reject(error);
    });
    socket.bind(port, HOST, () => resolve(false));
  });
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return taken;
}

/** How many ports a peer is tried on when someone else took the one chosen for it. */
const BIND_ATTEMPTS = 5;

/**
 * Starts a TFTP server that must be told its port (tftpd-hpa and atftpd
 * cannot take port 0 and say which one they got) and waits until it
 * answers. A port taken by another process between choosing it and the
 * server binding it (the server exits, the port is in use) is retried with
 * another, at most 5 times; any other failure to start is thrown.
 */
async function startPeer(
  start: (port: number) => Deno.ChildProcess,
  choose: () => Promise<number> = freeUdpPort,
): Promise<{ child: Deno.ChildProcess; port: number }> {
  for (let attempt = 1;; attempt++) {
    const port = await choose();
    const child = start(port);
    if (await answers(port, child)) return { child, port };
    const { code } = await child.status;
    if (!await udpPortTaken(port) || attempt === BIND_ATTEMPTS) {
      throw new Error(
        `the TFTP server exited with ${code} on port ${port}, which nobody else holds`,
      );
    }
  }
}

async function fsdClientAgainst(server: (dir: string, port: number) => Deno.ChildProcess) {
  await using served = await tempDir();
  await using local = await tempDir();
  await Deno.chmod(served.path, 0o777); // the servers drop to an unprivileged user
  const { child, port } = await startPeer((port) => server(served.path, port));
  try {
    const narrow = ["--allow-net", `--allow-read=${local.path}`, `--allow-write=${local.path}`];
    // Narrow permissions: Deno's socket; with --allow-ffi (README's install line has it): the
    // blocking one (lib/net/blocking_udp.ts).
    for (const permissions of [narrow, [...narrow, "--allow-ffi"]]) {
      await fsdClientRuns(permissions, served.path, local.path, port);
    }
  } finally {
    child.kill("SIGTERM");
    await child.status;
  }
}

/** fsd's TFTP client with `permissions` against the server on `port` serving `served`: get, put, a missing file. */
async function fsdClientRuns(permissions: string[], served: string, local: string, port: number) {
  const tag = permissions.includes("--allow-ffi") ? "b" : "d";
  for (const size of [...SIZES, 300_000]) {
    const data = randomBytes(size, size + 9);
    await Deno.writeFile(`${served}/s${size}`, data);
    await Deno.chmod(`${served}/s${size}`, 0o644);
    const url = `tftp://${HOST}:${port}/s${size}`;
    const got = await runFsd(permissions, ["get", url, `${local}/${tag}${size}`]);
    assert.equal(got.code, 0, got.stderr);
    await sameFile(`${local}/${tag}${size}`, data, `get s${size} (${tag})`, got.stderr);
    const put = await runFsd(permissions, [
      "put",
      `tftp://${HOST}:${port}/u${tag}${size}`,
      `${local}/${tag}${size}`,
    ]);
    assert.equal(put.code, 0, put.stderr);
    await sameFile(`${served}/u${tag}${size}`, data, `put u${tag}${size}`, put.stderr);
  }
  const missing = await runFsd(permissions, [
    "get",
    `tftp://${HOST}:${port}/nothere`,
    `${local}/x`,
  ]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /server error 1/);
}

/**
 * Waits until the TFTP server `child` answers on `port` (an RRQ for a
 * missing file gets ERROR): true; false when it has exited instead.
 */
async function answers(port: number, child: Deno.ChildProcess): Promise<boolean> {
  let exited = false;
  child.status.then(() => exited = true);
  for (let i = 0; i < 50; i++) {
    if (exited) return false;
    const got = await runFsd(["--allow-net"], [
      "get",
      `tftp://${HOST}:${port}/probe`,
      "-",
      "--timeout",
      "0.3",
    ]);
    if (/server error/.test(got.stderr)) return true;
  }
  if (exited) return false;
  throw new Error(`no TFTP server on port ${port}`);
}

/** tftpd-hpa on `port`, serving `dir`, in the foreground. */
function tftpdHpa(dir: string, port: number): Deno.ChildProcess {
  return new Deno.Command("/usr/sbin/in.tftpd", {
    args: ["-L", "-c", "-s", dir, "-a", `${HOST}:${port}`],
    stdout: "null",
    stderr: "null",
  }).spawn();
}

Deno.test({
  name: "interop: a peer whose port another process took first is started on another one",
  ...needs("tftpd-hpa"),
  fn: async () => {
    assertTools("tftpd-hpa");
    await using served = await tempDir();
    const squatter = dgram.createSocket("udp4");
    await new Promise<void>((resolve) => squatter.bind(0, HOST, () => resolve()));
    const taken = squatter.address().port;
    const offered = [taken];
    try {
      const { child, port } = await startPeer(
        (port) => tftpdHpa(served.path, port),
        () => offered.length > 0 ? Promise.resolve(offered.shift()!) : freeUdpPort(),
      );
      child.kill("SIGTERM");
      await child.status;
      assert.notEqual(port, taken);
      assert.equal(offered.length, 0); // the taken port was tried first
    } finally {
      await new Promise<void>((resolve) => squatter.close(() => resolve()));
    }
  },
});

Deno.test({
  name: "interop: fsd's TFTP client against tftpd-hpa (get, put, error)",
  ...needs("tftpd-hpa"),
  fn: async () => {
    assertTools("tftpd-hpa");
    await fsdClientAgainst(tftpdHpa);
  },
});

Deno.test({
  name: "interop: fsd's TFTP client against atftpd (get, put, error)",
  ...needs("atftpd"),
  fn: async () => {
    assertTools("atftpd");
    const atftpd = atftpdCandidate()!;
    await fsdClientAgainst(
      (dir, port) =>
        new Deno.Command(atftpd, {
          args: [
            "--daemon",
            "--no-fork",
            "--port",
            `${port}`,
            "--bind-address",
            HOST,
            "--user",
            "root",
            "--group",
            "root",
            dir,
          ],
          stdout: "null",
          stderr: "null",
        }).spawn(),
    );
  },
});

function atftpdCandidate(): string | undefined {
  return [
    Deno.env.get("ATFTPD"),
    new URL("../../.ci/cache/atftpd/usr/sbin/atftpd", import.meta.url).pathname,
    "/usr/sbin/atftpd",
  ].find(exists);
}
