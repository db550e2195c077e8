/**
 * The access model over HTTP (issue 18, "Access that a lab needs"; issue
 * 21 item 5): `--public NAME`, per-account homes, rights and `--anonymous
 * read` mean over HTTP exactly what they mean over fsd/1 and TFTP, through
 * lib/store's Access (one name per file: a public file is `handouts/NAME`
 * for everyone). Each rule with curl against `fsd serve --http-only`.
 */

import assert from "node:assert/strict";
import { hashPassword } from "../../lib/auth/password.ts";
import { tempDir } from "../support/files.ts";
import { assertTools, needs } from "../support/tools.ts";
import { curl, serveHttp } from "../support/http.ts";

const FAST = { ln: 10, r: 8, p: 1 };

/** DIR with handouts/ (public), homes/alice (alice's, rw), a file at the top; bob is read-only with a home. */
async function fixture() {
  const dir = await tempDir();
  const root = `${dir.path}/root`;
  await Deno.mkdir(`${root}/handouts`, { recursive: true });
  await Deno.mkdir(`${root}/homes/alice`, { recursive: true });
  await Deno.mkdir(`${root}/homes/bob`, { recursive: true });
  await Deno.writeTextFile(`${root}/handouts/lab1.txt`, "lab one\n");
  await Deno.writeTextFile(`${root}/homes/alice/hw1.txt`, "alice's homework\n");
  await Deno.writeTextFile(`${root}/homes/bob/hw1.txt`, "bob's homework\n");
  await Deno.writeTextFile(`${root}/grades.txt`, "instructor only\n");
  const users = `${dir.path}/users`;
  const hash = (password: string) => hashPassword(password, FAST);
  await Deno.writeTextFile(
    users,
    `alice:${await hash("wonderland")}:rw:homes/alice\nbob:${await hash(
      "builder",
    )}:ro:homes/bob\n`,
  );
  await Deno.writeTextFile(`${dir.path}/up.txt`, "uploaded\n");
  return { dir, root, users, [Symbol.asyncDispose]: () => dir[Symbol.asyncDispose]() };
}

type Fixture = Awaited<ReturnType<typeof fixture>>;

async function serve(f: Fixture, extra: string[]) {
  return await serveHttp(f.root, ["--users", f.users, ...extra], [f.users]);
}

Deno.test({
  name: "http access: --public: anonymous clients read only the public area, never write",
  ...needs("curl"),
  fn: async () => {
    assertTools("curl");
    await using f = await fixture();
    await using server = await serve(f, ["--public", "handouts"]);
    const base = `http://127.0.0.1:${server.port}`;
    assert.equal((await curl([`${base}/handouts/lab1.txt`])).text, "lab one\n");
    // The root lists the public area alone.
    const root = JSON.parse((await curl([`${base}/?json`])).text);
    assert.deepEqual(root.map((e: { name: string }) => e.name), ["handouts"]);
    for (const path of ["grades.txt", "homes/alice/hw1.txt", "homes/"]) {
      const refused = await curl([`${base}/${path}`]);
      assert.equal(refused.status, 401, `${path}: ${refused.text}`);
      assert.match(refused.text, /login required/);
    }
    const put = await curl(["-T", `${f.dir.path}/up.txt`, `${base}/handouts/`]);
    assert.equal(put.status, 401);
    assert.deepEqual([...Deno.readDirSync(`${f.root}/handouts`)].map((e) => e.name), [
      "lab1.txt",
    ]);
  },
});

Deno.test({
  name: "http access: an account reads the public area and its home, writes only its home",
  ...needs("curl"),
  fn: async () => {
    assertTools("curl");
    await using f = await fixture();
    await using server = await serve(f, ["--public", "handouts"]);
    const base = `http://127.0.0.1:${server.port}`;
    const alice = ["-u", "alice:wonderland"];
    // Her home is her root; the public area shows beside her files, under its one name.
    assert.equal((await curl([...alice, `${base}/hw1.txt`])).text, "alice's homework\n");
    assert.equal((await curl([...alice, `${base}/handouts/lab1.txt`])).text, "lab one\n");
    const listing = JSON.parse((await curl([...alice, `${base}/?json`])).text);
    assert.deepEqual(listing.map((e: { name: string }) => e.name).sort(), ["handouts", "hw1.txt"]);
    // Nothing of DIR outside her home and the public area: not the top, not bob's home.
    assert.equal((await curl([...alice, `${base}/grades.txt`])).status, 404);
    assert.equal((await curl([...alice, `${base}/homes/bob/hw1.txt`])).status, 404);
    // She writes in her home, and not in the public area.
    const mine = await curl([...alice, "-T", `${f.dir.path}/up.txt`, `${base}/`]);
    assert.equal(mine.status, 201, mine.text);
    assert.equal(await Deno.readTextFile(`${f.root}/homes/alice/up.txt`), "uploaded\n");
    const publicPut = await curl([...alice, "-T", `${f.dir.path}/up.txt`, `${base}/handouts/`]);
    assert.equal(publicPut.status, 403);
    assert.match(publicPut.text, /access denied: handouts\/ is read-only/);
    const mkcol = await curl([...alice, "-X", "MKCOL", `${base}/handouts/new`]);
    assert.equal(mkcol.status, 403);
    assert.ok(!(await Deno.stat(`${f.root}/handouts/up.txt`).catch(() => false)));
    assert.ok(!(await Deno.stat(`${f.root}/handouts/new`).catch(() => false)));
  },
});

Deno.test({
  name: "http access: a read-only account's PUT is 403 saying the account is read-only",
  ...needs("curl"),
  fn: async () => {
    assertTools("curl");
    await using f = await fixture();
    await using server = await serve(f, ["--public", "handouts"]);
    const base = `http://127.0.0.1:${server.port}`;
    const bob = ["-u", "bob:builder"];
    assert.equal((await curl([...bob, `${base}/hw1.txt`])).text, "bob's homework\n");
    const put = await curl([...bob, "-T", `${f.dir.path}/up.txt`, `${base}/`]);
    assert.equal(put.status, 403);
    assert.equal(put.text, "access denied: account bob is read-only\n");
    assert.doesNotMatch(put.text, /server is read-only/);
    const mkcol = await curl([...bob, "-X", "MKCOL", `${base}/made`]);
    assert.equal(mkcol.status, 403);
    assert.match(mkcol.text, /account bob is read-only/);
    assert.deepEqual([...Deno.readDirSync(`${f.root}/homes/bob`)].map((e) => e.name), ["hw1.txt"]);
    await server.waitForLine(/PUT "up\.txt" by "bob": refused with status 403: access denied/);
  },
});

Deno.test({
  name: "http access: --anonymous read reads all of DIR but the homes; without it, nothing",
  ...needs("curl"),
  fn: async () => {
    assertTools("curl");
    await using f = await fixture();
    {
      await using server = await serve(f, ["--anonymous", "read"]);
      const base = `http://127.0.0.1:${server.port}`;
      assert.equal((await curl([`${base}/grades.txt`])).text, "instructor only\n");
      assert.equal((await curl([`${base}/handouts/lab1.txt`])).text, "lab one\n");
      // The homes are out of reach, and not listed.
      const home = await curl([`${base}/homes/alice/hw1.txt`]);
      assert.notEqual(home.status, 200);
      assert.doesNotMatch(home.text, /homework/);
      const homes = JSON.parse((await curl([`${base}/homes/?json`])).text);
      assert.deepEqual(homes, []);
      assert.equal((await curl(["-T", `${f.dir.path}/up.txt`, `${base}/`])).status, 401);
    }
    {
      await using server = await serve(f, []);
      const base = `http://127.0.0.1:${server.port}`;
      for (const path of ["", "grades.txt", "handouts/lab1.txt"]) {
        const refused = await curl([`${base}/${path}`]);
        assert.equal(refused.status, 401, path);
      }
    }
  },
});
