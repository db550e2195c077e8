/**
 * The HTTP face with real clients: curl (GET, HEAD, ranges, -C -, -T, -F),
 * wget (-r -np, -c) and Python's urllib against `fsd serve --http-only`
 * run with its documented permissions.
 */

import assert from "node:assert/strict";
import { runFsd, spawnFsd } from "../support/cli.ts";
import { randomBytes, tempDir } from "../support/files.ts";
import { withDeadline } from "../support/raw_client.ts";
import { assertTools, needs } from "../support/tools.ts";
import { curl, hexDigest, serveHttp } from "../support/http.ts";

Deno.test({
  name: "http: curl GET, HEAD, one Range (206, 416), 304 on ETag and date, If-Range, -C - resumes",
  ...needs("curl"),
  fn: async () => {
    assertTools("curl");
    await using served = await tempDir();
    await using local = await tempDir();
    const data = randomBytes(300_000);
    await Deno.writeFile(`${served.path}/data.bin`, data);
    await Deno.writeTextFile(`${served.path}/notes.txt`, "hello\n");
    await using server = await serveHttp(served.path);
    const base = `http://127.0.0.1:${server.port}`;
    const whole = await curl([`${base}/data.bin`]);
    assert.equal(whole.status, 200);
    assert.deepEqual(whole.body, data);
    assert.equal(whole.headers["content-length"], "300000");
    assert.equal(whole.headers["content-type"], "application/octet-stream");
    assert.match(whole.headers["etag"], /^"[0-9a-f]+-[0-9a-f]+"$/);
    assert.ok(whole.headers["last-modified"]);
    const text = await curl([`${base}/notes.txt`]);
    assert.equal(text.headers["content-type"], "text/plain; charset=utf-8");
    const head = await curl(["-I", `${base}/data.bin`]);
    assert.equal(head.status, 200);
    assert.equal(head.headers["content-length"], "300000");
    assert.ok(head.text.startsWith("HTTP/1.1 200"), "headers only: curl -I prints them");
    const part = await curl(["-r", "1000-1999", `${base}/data.bin`]);
    assert.equal(part.status, 206);
    assert.equal(part.headers["content-range"], "bytes 1000-1999/300000");
    assert.deepEqual(part.body, data.subarray(1000, 2000));
    const tail = await curl(["-r", "-100", `${base}/data.bin`]);
    assert.deepEqual(tail.body, data.subarray(299_900));
    const past = await curl(["-r", "400000-", `${base}/data.bin`]);
    assert.equal(past.status, 416);
    assert.equal(past.headers["content-range"], "bytes */300000");
    const etag = whole.headers["etag"];
    assert.equal((await curl(["-H", `If-None-Match: ${etag}`, `${base}/data.bin`])).status, 304);
    const since = whole.headers["last-modified"];
    assert.equal(
      (await curl(["-H", `If-Modified-Since: ${since}`, `${base}/data.bin`])).status,
      304,
    );
    const stale = await curl(["-r", "0-9", "-H", 'If-Range: "0-0"', `${base}/data.bin`]);
    assert.equal(stale.status, 200); // the validator does not match: the whole file
    const fresh = await curl(["-r", "0-9", "-H", `If-Range: ${etag}`, `${base}/data.bin`]);
    assert.equal(fresh.status, 206);
    // curl -C - resumes a partial file.
    await Deno.writeFile(`${local.path}/data.bin`, data.subarray(0, 123_456));
    const resumed = await curl(["-C", "-", "-o", "data.bin", `${base}/data.bin`], local.path);
    assert.equal(resumed.status, 206, resumed.stderr);
    assert.deepEqual(await Deno.readFile(`${local.path}/data.bin`), data);
    // ?sha256 as sha256sum prints it.
    const digest = await curl([`${base}/data.bin?sha256`]);
    const expected = await hexDigest(data);
    assert.equal(digest.text, `${expected}  data.bin\n`);
    await server.stop();
    assert.ok(
      server.lines.some((l) => /^\[\d+\] GET "data.bin": sent file, 300000 bytes in /.test(l)),
      server.lines.join("\n"),
    );
  },
});

Deno.test({
  name: "http: directory pages, redirects, ?json as fsd ls --json, ?tar, wget -r -np mirrors",
  ...needs("curl", "wget"),
  fn: async () => {
    assertTools("curl", "wget");
    await using served = await tempDir();
    await using local = await tempDir();
    await Deno.mkdir(`${served.path}/sub/deeper`, { recursive: true });
    await Deno.writeTextFile(`${served.path}/a.txt`, "a\n");
    await Deno.writeFile(`${served.path}/sub/b.bin`, randomBytes(70_000, 2));
    await Deno.writeTextFile(`${served.path}/sub/deeper/c.txt`, "c\n");
    const long = "l".repeat(120);
    await Deno.writeTextFile(`${served.path}/sub/${long}`, "long\n");
    await using server = await spawnFsd(
      ["serve", served.path, "0", "--host", "127.0.0.1", "--http", "0", "--log", "json"],
      ["--allow-net=127.0.0.1", `--allow-read=${served.path}`, `--allow-write=${served.path}`],
      /"event":"listening","transport":"http"/,
    );
    // With --log json every line is JSON, the listening lines too.
    const listening = async (transport: string) =>
      JSON.parse(
        await withDeadline(
          server.waitForLine(new RegExp(`"event":"listening","transport":"${transport}"`)),
          `${transport} listening`,
        ),
      ).port as number;
    const httpPort = await listening("http");
    const fsdPort = await listening("fsd");
    const base = `http://127.0.0.1:${httpPort}`;
    const page = await curl([`${base}/sub/`]);
    assert.equal(page.status, 200);
    assert.match(page.headers["content-type"], /^text\/html/);
    assert.match(page.text, /<a href="b.bin" download>b.bin<\/a>/);
    assert.match(page.text, /<a href="deeper\/">deeper\/<\/a>/);
    assert.match(page.text, /68 KiB/);
    assert.match(page.text, /<label for="filter">/);
    const redirect = await curl([`${base}/sub?sort=size`]);
    assert.equal(redirect.status, 301);
    assert.equal(redirect.headers["location"], "/sub/?sort=size");
    // ?json has the fields of fsd ls --json.
    const json = await curl([`${base}/sub/?json`]);
    const ls = await runFsd(
      [`--allow-net=127.0.0.1:${fsdPort}`],
      ["ls", "127.0.0.1", String(fsdPort), "sub", "--json"],
    );
    assert.deepEqual(
      JSON.parse(json.text),
      ls.stdout.trim().split("\n").map((line) => JSON.parse(line)),
    );
    const accept = await curl(["-H", "Accept: application/json", `${base}/sub/`]);
    assert.deepEqual(JSON.parse(accept.text), JSON.parse(json.text));
    // ?tar, read back by tar itself (a pax header for the long name).
    const tar = await curl(["-o", "sub.tar", `${base}/sub/?tar`], local.path);
    assert.equal(tar.status, 200);
    const untar = await new Deno.Command("tar", { args: ["xf", "sub.tar"], cwd: local.path })
      .output();
    assert.ok(untar.success);
    assert.deepEqual(
      await Deno.readFile(`${local.path}/sub/b.bin`),
      await Deno.readFile(`${served.path}/sub/b.bin`),
    );
    assert.equal(await Deno.readTextFile(`${local.path}/sub/${long}`), "long\n");
    assert.equal(await Deno.readTextFile(`${local.path}/sub/deeper/c.txt`), "c\n");
    // wget -r -np mirrors the tree from the pages.
    const wget = await new Deno.Command("wget", {
      args: ["-q", "-r", "-np", "-nH", "-R", "index.html*", "-P", "mirror", `${base}/sub/`],
      cwd: local.path,
    }).output();
    assert.ok(wget.success, new TextDecoder().decode(wget.stderr));
    assert.equal(await Deno.readTextFile(`${local.path}/mirror/sub/deeper/c.txt`), "c\n");
    assert.deepEqual(
      await Deno.readFile(`${local.path}/mirror/sub/b.bin`),
      await Deno.readFile(`${served.path}/sub/b.bin`),
    );
    const logged = server.lines.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
    assert.ok(logged.some((e) => e.event === "request" && e.op === "GET" && e.kind === "archive"));
  },
});

Deno.test({
  name: "http: uploads: curl -T, -F with the form's token, 409, 400, 413, MKCOL, read-only 403",
  ...needs("curl"),
  fn: async () => {
    assertTools("curl");
    await using served = await tempDir();
    await using local = await tempDir();
    await Deno.mkdir(`${served.path}/in`);
    await Deno.writeTextFile(`${served.path}/in/taken.txt`, "first\n");
    const upload = randomBytes(200_000, 3);
    await Deno.writeFile(`${local.path}/up.bin`, upload);
    await Deno.writeTextFile(`${local.path}/taken.txt`, "second\n");
    await using server = await serveHttp(served.path, ["--max-upload", "250000"]);
    const base = `http://127.0.0.1:${server.port}`;
    const put = await curl(["-T", `${local.path}/up.bin`, `${base}/in/`]);
    assert.equal(put.status, 201, put.text);
    assert.deepEqual(await Deno.readFile(`${served.path}/in/up.bin`), upload);
    const again = await curl(["-T", `${local.path}/up.bin`, `${base}/in/`]);
    assert.equal(again.status, 409);
    assert.match(again.text, /file already exists: in\/up.bin/);
    const bad = await curl(["-T", `${local.path}/up.bin`, `${base}/in/.fsd-upload-x`]);
    assert.equal(bad.status, 400);
    assert.match(bad.text, /name is reserved/);
    const missing = await curl(["-T", `${local.path}/up.bin`, `${base}/nowhere/x`]);
    assert.equal(missing.status, 404);
    // Too large: from Content-Length, before a byte is stored.
    await Deno.writeFile(`${local.path}/big.bin`, randomBytes(300_000, 4));
    const big = await curl(["-T", `${local.path}/big.bin`, `${base}/in/`]);
    assert.equal(big.status, 413);
    assert.match(big.text, /upload too large/);
    // ...and mid-stream, when no length was said (chunked).
    const chunked = await curl([
      "-T",
      `${local.path}/big.bin`,
      "-H",
      "Transfer-Encoding: chunked",
      `${base}/in/`,
    ]);
    assert.equal(chunked.status, 413);
    // A form: the page's token first, then files; an existing name is refused, the others made.
    const page = await curl([`${base}/in/`]);
    const token = /name="csrf" value="([0-9a-f]+)"/.exec(page.text)![1];
    const form = await curl([
      "-H",
      "Accept: application/json",
      "-F",
      `csrf=${token}`,
      "-F",
      `file=@${local.path}/taken.txt`,
      "-F",
      `file=@${local.path}/up.bin;filename=copy.bin`,
      `${base}/in/`,
    ]);
    const results = JSON.parse(form.text).results;
    assert.deepEqual(results.map((r: { status: number }) => r.status), [409, 201]);
    assert.equal(await Deno.readTextFile(`${served.path}/in/taken.txt`), "first\n");
    assert.deepEqual(await Deno.readFile(`${served.path}/in/copy.bin`), upload);
    const forged = await curl(["-F", "csrf=0", "-F", `file=@${local.path}/taken.txt`, `${base}/`]);
    assert.equal(forged.status, 403);
    const crossSite = await curl([
      "-H",
      "Origin: http://evil.example",
      "-T",
      `${local.path}/taken.txt`,
      `${base}/`,
    ]);
    assert.equal(crossSite.status, 403);
    const mkcol = await curl(["-X", "MKCOL", `${base}/in/new`]);
    assert.equal(mkcol.status, 201);
    assert.ok((await Deno.stat(`${served.path}/in/new`)).isDirectory);
    assert.equal((await curl(["-X", "MKCOL", `${base}/in/new`])).status, 409);
    assert.equal((await curl(["-X", "DELETE", `${base}/in/up.bin`])).status, 405);
    // Nothing staged is left behind.
    const names = [...Deno.readDirSync(`${served.path}/in`)].map((e) => e.name).sort();
    assert.deepEqual(names, ["copy.bin", "new", "taken.txt", "up.bin"]);
    await server.stop();
    await using readOnly = await serveHttp(served.path, ["--read-only"]);
    const refused = await curl([
      "-T",
      `${local.path}/taken.txt`,
      `http://127.0.0.1:${readOnly.port}/x`,
    ]);
    assert.equal(refused.status, 403);
    assert.match(refused.text, /read-only/);
  },
});

Deno.test({
  name: "http: Python's urllib downloads and uploads",
  ...needs("python3"),
  fn: async () => {
    assertTools("python3");
    await using served = await tempDir();
    const data = randomBytes(50_000, 5);
    await Deno.writeFile(`${served.path}/d.bin`, data);
    await using server = await serveHttp(served.path);
    const script = `
import urllib.request, hashlib, sys
base = sys.argv[1]
body = urllib.request.urlopen(base + "/d.bin").read()
print(hashlib.sha256(body).hexdigest())
req = urllib.request.Request(base + "/py.txt", data=b"from python\\n", method="PUT")
print(urllib.request.urlopen(req).status)
`;
    const out = await new Deno.Command("python3", {
      args: ["-c", script, `http://127.0.0.1:${server.port}`],
      stdout: "piped",
    }).output();
    const [digest, status] = new TextDecoder().decode(out.stdout).trim().split("\n");
    const expected = await hexDigest(data);
    assert.equal(digest, expected);
    assert.equal(status, "201");
    assert.equal(await Deno.readTextFile(`${served.path}/py.txt`), "from python\n");
  },
});

Deno.test({
  name: "http: an HTTP upload racing fsd/1 and TFTP uploads of the same name: exactly one wins",
  ...needs("curl"),
  fn: async () => {
    assertTools("curl");
    await using served = await tempDir();
    await using local = await tempDir();
    const contents = [
      randomBytes(2_000_000, 21),
      randomBytes(2_000_000, 22),
      randomBytes(2_000_000, 23),
    ];
    for (const [i, data] of contents.entries()) {
      await Deno.writeFile(`${local.path}/${i}.bin`, data);
    }
    await using server = await spawnFsd(
      ["serve", served.path, "0", "--host", "127.0.0.1", "--http", "0", "--tftp", "0"],
      ["--allow-net=127.0.0.1", `--allow-read=${served.path}`, `--allow-write=${served.path}`],
      /^HTTP server listening on /,
    );
    const port = (pattern: RegExp) =>
      server.waitForLine(pattern).then((line) => Number(/port (\d+)/.exec(line)![1]));
    const [fsdPort, tftpPort, httpPort] = await Promise.all([
      port(/^File server/),
      port(/^TFTP server/),
      port(/^HTTP server/),
    ]);
    for (const round of [1, 2, 3]) {
      const name = `race${round}.bin`;
      const read = (i: number) => [`--allow-net=127.0.0.1`, `--allow-read=${local.path}/${i}.bin`];
      const [fsd, tftp, http] = await Promise.all([
        runFsd(read(0), ["put", "127.0.0.1", String(fsdPort), `${local.path}/0.bin`, name]),
        runFsd(read(1), ["put", `tftp://127.0.0.1:${tftpPort}/${name}`, `${local.path}/1.bin`]),
        curl(["-T", `${local.path}/2.bin`, `http://127.0.0.1:${httpPort}/${name}`]),
      ]);
      const won = [fsd.code === 0, tftp.code === 0, http.status === 201];
      assert.equal(won.filter(Boolean).length, 1, `round ${round}: ${won}`);
      if (http.status !== 201) assert.equal(http.status, 409);
      assert.deepEqual(await Deno.readFile(`${served.path}/${name}`), contents[won.indexOf(true)]);
    }
    // No staging file is left.
    assert.deepEqual(
      [...Deno.readDirSync(served.path)].map((e) => e.name).sort(),
      ["race1.bin", "race2.bin", "race3.bin"],
    );
  },
});

Deno.test({
  name: "http: wget -c resumes a partial download",
  ...needs("wget"),
  fn: async () => {
    assertTools("wget");
    await using served = await tempDir();
    await using local = await tempDir();
    const data = randomBytes(500_000, 31);
    await Deno.writeFile(`${served.path}/iso.bin`, data);
    await Deno.writeFile(`${local.path}/iso.bin`, data.subarray(0, 200_000));
    await using server = await serveHttp(served.path);
    const wget = await new Deno.Command("wget", {
      args: ["-q", "-c", `http://127.0.0.1:${server.port}/iso.bin`],
      cwd: local.path,
    }).output();
    assert.ok(wget.success, new TextDecoder().decode(wget.stderr));
    assert.deepEqual(await Deno.readFile(`${local.path}/iso.bin`), data);
    await server.stop();
    assert.ok(
      server.lines.some((l) => /GET "iso.bin": sent file \(status 206\), 300000 bytes/.test(l)),
      server.lines.join("\n"),
    );
  },
});

Deno.test("http: usage errors of --http, --http-only and --live exit 2", async () => {
  await using served = await tempDir();
  const cases: [string[], RegExp][] = [
    [["--live"], /--live needs --http HTTPPORT/],
    [["--http-only", "--tftp", "0"], /--http-only serves HTTP alone/],
    [["--http", "x"], /invalid port for --http: x/],
    [["--http", "0", "--live", "--workers", "2"], /--live and --workers do not combine/],
  ];
  for (const [flags, message] of cases) {
    const result = await runFsd(
      ["--allow-net=127.0.0.1", `--allow-read=${served.path}`],
      ["serve", served.path, "0", "--host", "127.0.0.1", ...flags],
    );
    assert.equal(result.code, 2, `${flags.join(" ")}: ${result.stderr}`);
    assert.match(result.stderr, message);
  }
});
