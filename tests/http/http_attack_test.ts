/**
 * The HTTP face against hostile requests: every path through the same
 * confinement, file contents never a page of this origin, names escaped,
 * cross-site writes refused, limits counting HTTP too.
 */

import assert from "node:assert/strict";
import { spawnFsd } from "../support/cli.ts";
import { tempDir } from "../support/files.ts";
import { assertTools, needs } from "../support/tools.ts";
import { curl, rawRequest, serveHttp } from "../support/http.ts";

/** Request targets that must be refused, with the status. */
const CORPUS: [string, number, RegExp][] = [
  ["/../secret.txt", 400, /"\.\." part/],
  ["/a/../../secret.txt", 400, /"\.\." part/],
  ["/%2e%2e/secret.txt", 400, /"\.\." part/],
  ["/%2E%2E%2Fsecret.txt", 400, /encoded slash/],
  ["/a%2f..%2fsecret.txt", 400, /encoded slash/],
  ["/notes.txt%00.png", 400, /control character/],
  ["/..%5csecret.txt", 400, /backslash/],
  ["/a\\..\\secret.txt", 400, /backslash/],
  ["/%c0%ae%c0%ae/secret.txt", 400, /not valid UTF-8/],
  ["/%e0%80%ae/x", 400, /not valid UTF-8/],
  ["/%", 400, /malformed percent-escape/],
  ["/%zz", 400, /malformed percent-escape/],
  ["//etc/passwd", 400, /absolute/],
  ["/a//b", 400, /empty part/],
  ["/.fsd-upload-1234", 400, /reserved/],
  ["/out/secret.txt", 403, /outside the served directory/],
  ["/out", 403, /outside the served directory/],
  ["/escape.txt", 403, /outside the served directory/],
  ["/" + "a".repeat(300), 400, /name too long/],
  ["/" + "a/".repeat(2100), 400, /too long/],
];

Deno.test({
  name: "http attack corpus: traversal, encodings, NUL, backslashes, overlong UTF-8, symlinks out",
  fn: async () => {
    await using outside = await tempDir();
    await using served = await tempDir();
    await Deno.writeTextFile(`${outside.path}/secret.txt`, "SECRET\n");
    await Deno.writeTextFile(`${served.path}/notes.txt`, "notes\n");
    await Deno.symlink(outside.path, `${served.path}/out`);
    await Deno.symlink(`${outside.path}/secret.txt`, `${served.path}/escape.txt`);
    await using server = await serveHttp(served.path);
    for (const [target, status, message] of CORPUS) {
      for (const method of ["GET", "PUT"]) {
        const body = method === "PUT" ? "content-length: 1\r\n\r\nx" : "\r\n";
        const reply = await rawRequest(
          server.port,
          `${method} ${target} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n${body}`,
        );
        const expected = method === "PUT" && target === "/out" ? 403 : status;
        assert.equal(reply.status, expected, `${method} ${target}: ${reply.text}`);
        if (method === "GET") assert.match(reply.text, message, target);
        assert.doesNotMatch(reply.text, /SECRET/, target);
      }
    }
    // Nothing was written anywhere.
    assert.deepEqual([...Deno.readDirSync(outside.path)].map((e) => e.name), ["secret.txt"]);
    assert.deepEqual(
      [...Deno.readDirSync(served.path)].map((e) => e.name).sort(),
      ["escape.txt", "notes.txt", "out"],
    );
    // The listing leaves out what leads outside.
    const listing = await rawRequest(
      server.port,
      "GET /?json HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    );
    assert.doesNotMatch(listing.text, /escape|"out"/);
  },
});

Deno.test({
  name: "http: files never act as pages of this origin; names in pages are escaped",
  ...needs("curl"),
  fn: async () => {
    assertTools("curl");
    await using served = await tempDir();
    const evil = "<img src=x onerror=alert(1)>.txt";
    await Deno.writeTextFile(`${served.path}/${evil}`, "x\n");
    await Deno.writeTextFile(`${served.path}/page.html`, "<script>alert(1)</script>");
    await Deno.writeTextFile(`${served.path}/image.svg`, "<svg onload='alert(1)'/>");
    await using server = await serveHttp(served.path);
    const base = `http://127.0.0.1:${server.port}`;
    for (const name of ["page.html", "image.svg"]) {
      const reply = await curl([`${base}/${name}`]);
      assert.equal(reply.headers["x-content-type-options"], "nosniff");
      assert.match(reply.headers["content-security-policy"], /sandbox/);
      assert.match(reply.headers["content-disposition"], /^attachment; filename="/);
    }
    const page = await curl([`${base}/`]);
    assert.ok(!page.text.includes("<img src=x"), "the name is not markup");
    assert.ok(page.text.includes("&#60;img src=x onerror=alert(1)&#62;.txt"));
    assert.match(page.headers["content-security-policy"], /script-src 'self'/);
    assert.equal(page.headers["x-frame-options"], "DENY");
    // A write from another site's page is refused (Sec-Fetch-Site, Origin).
    const crossSite = await curl([
      "-X",
      "MKCOL",
      "-H",
      "Sec-Fetch-Site: cross-site",
      `${base}/made`,
    ]);
    assert.equal(crossSite.status, 403);
    const login = await curl(["-d", "user=a&password=b&csrf=0", `${base}/.fsd/login`]);
    assert.equal(login.status, 404); // no accounts on this server
  },
});

Deno.test({
  name: "http: --max-per-ip counts HTTP requests in progress; a silent body is dropped (408)",
  fn: async () => {
    await using served = await tempDir();
    await using server = await serveHttp(served.path, ["--max-per-ip", "1", "--idle-timeout", "1"]);
    // An upload that says 10 bytes and sends 1: it holds the only place.
    const slow = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    await slow.write(
      new TextEncoder().encode("PUT /slow.bin HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\n\r\nx"),
    );
    // Once the server has taken it in (the first try, or one of the next few), others are refused.
    let busy = { status: 0, text: "" };
    for (let i = 0; i < 20 && busy.status !== 503; i++) {
      busy = await rawRequest(
        server.port,
        "GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
      );
    }
    assert.equal(busy.status, 503);
    assert.match(busy.text, /too many connections from 127.0.0.1: at most 1/);
    const reply = new Uint8Array(1000);
    const n = await slow.read(reply);
    assert.match(new TextDecoder().decode(reply.subarray(0, n ?? 0)), /^HTTP\/1.1 408/);
    slow.close();
    // Once the server has seen it go (it lingers for the rest of the body; a few tries at most).
    let after = { status: 0, text: "" };
    for (let i = 0; i < 50 && after.status !== 200; i++) {
      after = await rawRequest(
        server.port,
        "GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
      );
    }
    assert.equal(after.status, 200);
    assert.deepEqual([...Deno.readDirSync(served.path)], []); // the dropped upload left nothing
  },
});

Deno.test("http: an fsd/1 connection and HTTP requests count against one --max-per-ip", async () => {
  await using served = await tempDir();
  await using server = await spawnFsd(
    ["serve", served.path, "0", "--host", "127.0.0.1", "--http", "0", "--max-per-ip", "1"],
    ["--allow-net=127.0.0.1", `--allow-read=${served.path}`, `--allow-write=${served.path}`],
    /^HTTP server listening on /,
  );
  const port = async (pattern: RegExp) =>
    Number(/port (\d+)/.exec(await server.waitForLine(pattern))![1]);
  const [fsdPort, httpPort] = [await port(/^File server/), await port(/^HTTP server/)];
  const held = await Deno.connect({ hostname: "127.0.0.1", port: fsdPort });
  try {
    // The greeting says the fsd/1 connection was admitted: it holds the one place.
    const greeting = new Uint8Array(64);
    assert.ok(((await held.read(greeting)) ?? 0) > 0);
    const refused = await rawRequest(
      httpPort,
      "GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    );
    assert.equal(refused.status, 503);
    assert.match(refused.text, /too many connections from 127.0.0.1: at most 1/);
  } finally {
    held.close();
  }
  // Once the server has seen it go (a few tries at most), HTTP is served.
  let after = { status: 0, text: "" };
  for (let i = 0; i < 50 && after.status !== 200; i++) {
    after = await rawRequest(httpPort, "GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
  }
  assert.equal(after.status, 200);
});
