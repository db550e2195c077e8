import assert from "node:assert/strict";
import { ErrorCode, ProtocolError } from "../lib/store/errors.ts";
import { isListableName, MAX_NAME_BYTES, parseName, Sandbox } from "../lib/store/sandbox.ts";
import { tempDir } from "./helpers.ts";

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
