/**
 * The access model (lib/store/access.ts): a public read-only area, homes an
 * account writes, nothing of the homes for anonymous clients, and the same
 * rules over TFTP, which has no login (issue 18, item 1 and "Access that a
 * lab needs").
 */

import assert from "node:assert/strict";
import { hashPassword } from "../../lib/auth/password.ts";
import { Access, type Principal } from "../../lib/store/access.ts";
import { FileStore } from "../../lib/store/file_store.ts";
import { ErrorCode, ProtocolError } from "../../lib/store/errors.ts";
import { runFsd, spawnFsd } from "../support/cli.ts";
import { tempDir } from "../support/files.ts";
import type { Files } from "../../lib/store/access.ts";

const alice: Principal = { name: "alice", rights: "rw", home: "uploads/alice" };
const teacher: Principal = { name: "teacher", rights: "rw" };

async function lab() {
  const dir = await tempDir();
  const root = `${dir.path}/root`;
  await Deno.mkdir(`${root}/uploads/alice`, { recursive: true });
  await Deno.mkdir(`${root}/uploads/bob`, { recursive: true });
  await Deno.mkdir(`${root}/handouts`, { recursive: true });
  await Deno.writeTextFile(`${root}/uploads/alice/hw1.txt`, "alice's homework\n");
  await Deno.writeTextFile(`${root}/handouts/sheet1.txt`, "sheet 1\n");
  await Deno.writeTextFile(`${root}/top.txt`, "top\n");
  return { dir, root, [Symbol.asyncDispose]: () => dir[Symbol.asyncDispose]() };
}

/** What reading `name` through `files` gives, as text. */
async function text(files: Files, name: string): Promise<string> {
  const opened = await files.openRead(name);
  const buffer = new Uint8Array(64 * 1024);
  let out = "";
  const decoder = new TextDecoder();
  try {
    for (let n; (n = await opened.source.read(buffer)) !== null;) {
      out += decoder.decode(buffer.subarray(0, n), { stream: true });
    }
    return out;
  } finally {
    opened.close();
  }
}

async function refusal(promise: Promise<unknown>): Promise<number> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof ProtocolError) return error.code;
    throw error;
  }
  return -1;
}

Deno.test("access: one name per file; homes written by their account, the public area read by all", async () => {
  await using f = await lab();
  const store = await FileStore.open({ root: f.root });
  const access = new Access({
    accounts: true,
    public: "handouts",
    homes: () => ["uploads/alice", "uploads/bob"],
  });
  const anonymous = access.view(store, undefined);
  const asAlice = access.view(store, alice);
  const asTeacher = access.view(store, teacher);
  // Anonymous: the public area and nothing else, never a write.
  assert.equal(await text(anonymous, "handouts/sheet1.txt"), "sheet 1\n");
  assert.match(await text(anonymous, ""), /^d 0 \S+ handouts\n$/);
  assert.equal(await refusal(anonymous.openRead("uploads/alice/hw1.txt")), ErrorCode.NO_SUCH_USER);
  assert.equal(await refusal(anonymous.openRead("top.txt")), ErrorCode.NO_SUCH_USER);
  assert.equal(await refusal(anonymous.stageWrite("handouts/evil.txt")), ErrorCode.NO_SUCH_USER);
  assert.equal(await refusal(anonymous.makeDirectory("x")), ErrorCode.NO_SUCH_USER);
  // Alice: her home as her root, the public area beside it, read-only.
  assert.equal(await text(asAlice, "hw1.txt"), "alice's homework\n");
  assert.equal(await text(asAlice, "handouts/sheet1.txt"), "sheet 1\n");
  assert.match(await text(asAlice, ""), /^d 0 \S+ handouts\nf 17 \S+ hw1.txt\n$/);
  assert.equal(await refusal(asAlice.stageWrite("handouts/evil.txt")), ErrorCode.ACCESS_VIOLATION);
  const staged = await asAlice.stageWrite("hw2.txt");
  await staged.commit();
  await staged.discard();
  assert.ok((await Deno.stat(`${f.root}/uploads/alice/hw2.txt`)).isFile);
  // The instructor (no home): all of DIR, and writes the handouts.
  assert.equal(await text(asTeacher, "uploads/alice/hw1.txt"), "alice's homework\n");
  const handout = await asTeacher.stageWrite("handouts/sheet2.txt");
  await handout.commit();
  await handout.discard();
  assert.equal(access.may(undefined, "handouts/sheet2.txt", "read"), true);
  assert.equal(access.may(undefined, "handouts/sheet2.txt", "write"), false);
  assert.equal(access.may(alice, "hw3.txt", "write"), true);
  assert.equal(access.may({ ...alice, rights: "ro" }, "hw3.txt", "write"), false);
});

Deno.test("access: --anonymous read without a public area reads all of DIR but the homes", async () => {
  await using f = await lab();
  await Deno.symlink(`${f.root}/uploads/alice`, `${f.root}/link-to-alice`);
  const store = await FileStore.open({ root: f.root });
  const access = new Access({
    accounts: true,
    anonymousRead: true,
    homes: () => ["uploads/alice", "uploads/bob"],
  });
  const anonymous = access.view(store, undefined);
  assert.equal(await text(anonymous, "top.txt"), "top\n");
  assert.equal(await text(anonymous, "uploads"), "");
  assert.doesNotMatch(await text(anonymous, ""), /link-to-alice/);
  for (const name of ["uploads/alice/hw1.txt", "uploads/alice", "link-to-alice/hw1.txt"]) {
    assert.equal(await refusal(anonymous.openRead(name)), ErrorCode.ACCESS_VIOLATION, name);
  }
  assert.equal(await refusal(anonymous.stageWrite("new.txt")), ErrorCode.NO_SUCH_USER);
});

const TFTP_READY = /^TFTP server listening on /;

Deno.test("access: serve --users --tftp: TFTP serves only what anonymous clients may read, takes no uploads", async () => {
  await using f = await lab();
  const users = `${f.dir.path}/users.txt`;
  const hash = await hashPassword("wonderland", { ln: 10, r: 8, p: 1 });
  await Deno.writeTextFile(users, `alice:${hash}:rw:uploads/alice\n`, { mode: 0o600 });
  await Deno.chmod(users, 0o600);
  const local = `${f.dir.path}/evil.txt`;
  await Deno.writeTextFile(local, "evil\n");
  const permissions = [
    "--allow-net=127.0.0.1",
    `--allow-read=${f.root},${users}`,
    `--allow-write=${f.root}`,
  ];
  for (const [extra, readable] of [[[], false], [["--public", "handouts"], true]] as const) {
    await using server = await spawnFsd(
      ["serve", f.root, "0", "--host", "127.0.0.1", "--users", users, "--tftp", "0", ...extra],
      permissions,
      TFTP_READY,
    );
    const said = server.lines.join("\n");
    assert.match(
      said,
      readable
        ? /TFTP has no login: it serves only handouts\/, read-only, and takes no uploads/
        : /TFTP has no login: it serves nothing, and takes no uploads/,
    );
    assert.doesNotMatch(said, /Warning: .*users\.txt/);
    const url = `tftp://127.0.0.1:${server.port}`;
    const client = ["--allow-net=127.0.0.1", `--allow-read=${f.dir.path}`];
    const stolen = await runFsd(client, ["get", `${url}/uploads/alice/hw1.txt`, "-"]);
    assert.equal(stolen.code, 1, stolen.stdout);
    assert.equal(stolen.stderr, "fsd: server error 2: Access violation\n");
    const put = await runFsd(client, ["put", `${url}/handouts/`, local]);
    assert.equal(put.code, 1);
    assert.equal(put.stderr, "fsd: server error 2: Access violation\n");
    const handout = await runFsd(client, ["get", `${url}/handouts/sheet1.txt`, "-"]);
    assert.equal(handout.code, readable ? 0 : 1, handout.stderr);
    if (readable) assert.equal(handout.stdout, "sheet 1\n");
  }
  await assert.rejects(Deno.stat(`${f.root}/handouts/evil.txt`), Deno.errors.NotFound);
});

Deno.test("access: serve --users warns about an accounts file other users can read", async () => {
  await using f = await lab();
  const users = `${f.dir.path}/users.txt`;
  await Deno.writeTextFile(users, `alice:${await hashPassword("w", { ln: 10, r: 8, p: 1 })}:rw\n`);
  await Deno.chmod(users, 0o644);
  await using server = await spawnFsd(
    ["serve", f.root, "0", "--host", "127.0.0.1", "--users", users],
    ["--allow-net=127.0.0.1", `--allow-read=${f.root},${users}`, `--allow-write=${f.root}`],
    /^File server listening on /,
  );
  assert.ok(
    server.lines.some((line) =>
      line.startsWith(`Warning: ${users} is open to other users (mode 0644)`)
    ),
    server.lines.join("\n"),
  );
});
