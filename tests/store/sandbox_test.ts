import assert from "node:assert/strict";
import { ErrorCode, ProtocolError } from "../../lib/store/errors.ts";
import { isListableName, MAX_NAME_BYTES, parseName, Sandbox } from "../../lib/store/sandbox.ts";
import { formatJson, formatText } from "../../lib/store/log.ts";
import { tempDir } from "../support/files.ts";

const encode = (s: string) => new TextEncoder().encode(s);

async function rejectsWith(
  promise: Promise<unknown>,
  code: number,
  pattern?: RegExp,
): Promise<void> {
  await assert.rejects(promise, (e: unknown) => {
    assert.ok(e instanceof ProtocolError, `expected ProtocolError, got ${e}`);
    assert.equal(e.code, code, e.message);
    if (pattern) assert.match(e.message, pattern);
    return true;
  });
}

function deniedName(raw: Uint8Array | string, pattern: RegExp): void {
  assert.throws(() => parseName(typeof raw === "string" ? encode(raw) : raw), (e: unknown) => {
    assert.ok(e instanceof ProtocolError);
    assert.equal(e.code, ErrorCode.ACCESS_VIOLATION);
    assert.match(e.message, pattern);
    return true;
  });
}

Deno.test("names: ordinary relative names pass unchanged", () => {
  for (
    const name of [
      "a",
      "a.txt",
      "dir/sub/file",
      "...",
      "..a",
      "a..",
      ".hidden",
      "ünïcødé/文件",
      "a b",
    ]
  ) {
    assert.equal(parseName(encode(name)), name);
  }
  assert.equal(parseName(new Uint8Array(0)), "");
});

Deno.test("names: at most 255 bytes", () => {
  assert.equal(parseName(encode("x".repeat(MAX_NAME_BYTES))), "x".repeat(255));
  deniedName("x".repeat(256), /name too long: 256 bytes/);
  deniedName("é".repeat(128), /name too long: 256 bytes/); // 128 characters, 256 bytes
});

Deno.test("names: must be valid UTF-8", () => {
  deniedName(new Uint8Array([0x61, 0xff]), /not valid UTF-8/);
  deniedName(new Uint8Array([0xc0, 0xae]), /not valid UTF-8/); // overlong "."
  deniedName(new Uint8Array([0xed, 0xa0, 0x80]), /not valid UTF-8/); // surrogate
});

Deno.test("names: no control characters", () => {
  for (const c of ["\u0001", "\t", "\n", "\u001f", "\u007f", "\u0080", "\u0085", "\u009f"]) {
    deniedName(`a${c}b`, /control character/);
  }
  assert.equal(parseName(encode("a\u00a0b")), "a\u00a0b"); // first character past C1
});

Deno.test("names: no invisible or layout characters; a leading U+FEFF is refused, not stripped", () => {
  for (
    const [c, code] of [
      ["\uFEFF", "FEFF"],
      ["\u200B", "200B"],
      ["\u200D", "200D"],
      ["\u202E", "202E"],
      ["\u2066", "2066"],
      ["\u2028", "2028"],
      ["\u2029", "2029"],
    ]
  ) {
    deniedName(`a${c}b`, new RegExp(`invisible or layout character: U\\+${code}$`));
  }
  deniedName("\uFEFFnotes.txt", /U\+FEFF/);
  assert.equal(isListableName("\u202Etxt.exe"), false);
  assert.equal(
    parseName(encode("caf\u00e9 \u05e9\u05dc\u05d5\u05dd.txt")),
    "caf\u00e9 \u05e9\u05dc\u05d5\u05dd.txt",
  );
});

Deno.test("log: IPv4-mapped addresses as plain IPv4; invisible characters escaped in every line", () => {
  const connection = { event: "connection", id: 1, address: "::ffff:a09:809", port: 5 } as const;
  assert.equal(formatText(connection), "[1] connection from 10.9.8.9 port 5");
  assert.match(
    formatJson({ ...connection, address: "::ffff:10.9.8.9" }),
    /"address":"10\.9\.8\.9"/,
  );
  assert.equal(formatText({ ...connection, address: "::1" }), "[1] connection from ::1 port 5");
  const request = {
    event: "request",
    id: 2,
    op: "RRQ",
    name: "a\u202Eb\u2028c",
    outcome: "refused",
    bytes: 0,
    ms: 1,
    code: 2,
    message: "name contains an invisible or layout character: U+202E",
  } as const;
  assert.match(formatText(request), /^\[2\] RRQ "a\\u202eb\\u2028c": /);
  assert.doesNotMatch(formatText(request) + formatJson(request), /[\u202E\u2028]/);
  assert.equal(JSON.parse(formatJson(request)).name, request.name);
});

Deno.test("names: no backslash, no absolute path, no empty, . or .. part", () => {
  deniedName("a\\b", /backslash/);
  deniedName("..\\etc", /backslash/);
  deniedName("/etc/passwd", /absolute/);
  deniedName("a//b", /empty part/);
  deniedName("a/", /empty part/);
  deniedName(".", /"\." part/);
  deniedName("./a", /"\." part/);
  deniedName("a/./b", /"\." part/);
  deniedName("..", /"\.\." part/);
  deniedName("../etc/passwd", /"\.\." part/);
  deniedName("a/../../b", /"\.\." part/);
});

Deno.test("names: staging names are reserved", () => {
  deniedName(".fsd-upload-123", /reserved/);
  deniedName("dir/.fsd-upload-123", /reserved/);
  assert.equal(isListableName(".fsd-upload-x"), false);
});

Deno.test("names: which directory entries a listing can carry", () => {
  assert.equal(isListableName("ok.txt"), true);
  assert.equal(isListableName("a\u0001b"), false);
  assert.equal(isListableName("a\\b"), false);
  assert.equal(isListableName("x".repeat(256)), false);
  assert.equal(isListableName("bad\uFFFDutf8"), false);
});

Deno.test("sandbox: opening checks the directory", async () => {
  await using dir = await tempDir();
  await Deno.writeTextFile(`${dir.path}/file`, "x");
  await assert.rejects(Sandbox.open(`${dir.path}/missing`), /directory not found/);
  await assert.rejects(Sandbox.open(`${dir.path}/file`), /not a directory/);
  const sandbox = await Sandbox.open(dir.path);
  assert.equal(sandbox.root, await Deno.realPath(dir.path));
});

Deno.test("sandbox: symlinks are followed and must stay inside", async () => {
  await using outside = await tempDir();
  await using dir = await tempDir();
  const root = dir.path;
  await Deno.writeTextFile(`${outside.path}/secret`, "secret");
  await Deno.mkdir(`${root}/sub`);
  await Deno.writeTextFile(`${root}/sub/file`, "ok");
  await Deno.symlink(`${outside.path}/secret`, `${root}/to-secret`);
  await Deno.symlink(outside.path, `${root}/to-outside-dir`);
  await Deno.symlink("sub/file", `${root}/to-inside`);
  await Deno.symlink("sub", `${root}/to-sub`);
  await Deno.symlink("/", `${root}/to-root`);
  await Deno.symlink("nowhere", `${root}/dangling`);
  // a sibling whose name starts with the root's name is still outside
  await Deno.mkdir(`${root}-sibling`);
  await Deno.writeTextFile(`${root}-sibling/x`, "x");
  await Deno.symlink(`${root}-sibling/x`, `${root}/to-sibling`);
  try {
    const sandbox = await Sandbox.open(root);
    const real = sandbox.root;
    assert.equal(await sandbox.resolveExisting(""), real);
    assert.equal(await sandbox.resolveExisting("sub/file"), `${real}/sub/file`);
    assert.equal(await sandbox.resolveExisting("to-inside"), `${real}/sub/file`);
    assert.equal(await sandbox.resolveExisting("to-sub/file"), `${real}/sub/file`);
    await rejectsWith(sandbox.resolveExisting("to-secret"), ErrorCode.ACCESS_VIOLATION, /outside/);
    await rejectsWith(sandbox.resolveExisting("to-outside-dir/secret"), ErrorCode.ACCESS_VIOLATION);
    await rejectsWith(sandbox.resolveExisting("to-root/etc/passwd"), ErrorCode.ACCESS_VIOLATION);
    // what does not exist outside is not revealed either
    await rejectsWith(
      sandbox.resolveExisting("to-outside-dir/missing"),
      ErrorCode.ACCESS_VIOLATION,
    );
    await rejectsWith(sandbox.resolveExisting("to-root/no/such/path"), ErrorCode.ACCESS_VIOLATION);
    await rejectsWith(sandbox.resolveExisting("sub/missing/deeper"), ErrorCode.NOT_FOUND);
    await rejectsWith(sandbox.resolveExisting("to-sibling"), ErrorCode.ACCESS_VIOLATION);
    await rejectsWith(
      sandbox.resolveExisting("missing"),
      ErrorCode.NOT_FOUND,
      /file not found: missing/,
    );
    await rejectsWith(sandbox.resolveExisting("dangling"), ErrorCode.NOT_FOUND);
    await rejectsWith(sandbox.resolveExisting("sub/file/deeper"), ErrorCode.NOT_FOUND);

    assert.equal(await sandbox.resolveNew("new.txt"), `${real}/new.txt`);
    assert.equal(await sandbox.resolveNew("to-sub/new.txt"), `${real}/sub/new.txt`);
    await rejectsWith(sandbox.resolveNew("sub/file"), ErrorCode.FILE_EXISTS, /file already exists/);
    await rejectsWith(sandbox.resolveNew("dangling"), ErrorCode.FILE_EXISTS);
    await rejectsWith(sandbox.resolveNew("to-inside"), ErrorCode.FILE_EXISTS);
    await rejectsWith(sandbox.resolveNew("to-secret"), ErrorCode.ACCESS_VIOLATION);
    await rejectsWith(sandbox.resolveNew("to-outside-dir/new"), ErrorCode.ACCESS_VIOLATION);
    await rejectsWith(sandbox.resolveNew("missing/new"), ErrorCode.NOT_FOUND);
    await rejectsWith(sandbox.resolveNew("sub/file/new"), ErrorCode.NOT_FOUND);
    await rejectsWith(sandbox.resolveNew(""), ErrorCode.ACCESS_VIOLATION);
  } finally {
    await Deno.remove(`${root}-sibling`, { recursive: true });
  }
});
