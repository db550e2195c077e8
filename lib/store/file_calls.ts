/**
 * The metadata calls of the server's read path (realPath, stat, lstat,
 * open, readLink), synchronous where that cannot stall it and handed to
 * Deno's blocking threads where it could.
 *
 * An async call costs a hand-off to a thread and back: one small file's
 * calls (realPath, stat, open, the root's stat) take about 45 µs made
 * synchronously and 115-240 µs async (bench/fs_calls.ts), and in
 * `fsd get -r` of a tree the server is the bottleneck. But a synchronous
 * call on a stalled network file system (NFS, GlusterFS over FUSE, CIFS)
 * would freeze every client and every deadline with it. So the calls are
 * synchronous only while every file system at or under the served
 * directory is a local one (ext4, xfs, btrfs, tmpfs, ...), which only
 * /proc/self/mountinfo tells: where fsd may not read it (a narrow
 * `--allow-read`) or off Linux, they stay async. The mount table is read
 * again at most every REFRESH_MS, on the way, so a network file system
 * mounted under the directory later turns the calls async within that time.
 * File contents are always read async (a large file's reads overlap the
 * network); uploads keep their own calls (staging.ts).
 */

/** `call` made now; its result or error as a settled promise. */
export function now<T>(call: () => T): Promise<T> {
  try {
    return Promise.resolve(call());
  } catch (error) {
    return Promise.reject(error);
  }
}

export interface FileCalls {
  /** Whether the calls are made synchronously right now. */
  readonly sync: boolean;
  realPath(path: string): Promise<string>;
  stat(path: string): Promise<Deno.FileInfo>;
  lstat(path: string): Promise<Deno.FileInfo>;
  open(path: string, options?: Deno.OpenOptions): Promise<Deno.FsFile>;
  readLink(path: string): Promise<string>;
}

/** Always async: Deno's calls, each on a blocking thread. */
export const ASYNC_CALLS: FileCalls = {
  sync: false,
  realPath: (path) => Deno.realPath(path),
  stat: (path) => Deno.stat(path),
  lstat: (path) => Deno.lstat(path),
  open: (path, options) => Deno.open(path, options),
  readLink: (path) => Deno.readLink(path),
};

/** File systems on this machine's own storage or memory: a call on them cannot wait on a network. */
const LOCAL_TYPES = new Set([
  "ext2",
  "ext3",
  "ext4",
  "xfs",
  "btrfs",
  "f2fs",
  "jfs",
  "reiserfs",
  "zfs",
  "tmpfs",
  "ramfs",
  "overlay",
  "vfat",
  "exfat",
  "ntfs3",
]);

/** How long a reading of the mount table is trusted. */
export const REFRESH_MS = 2000;

const MOUNTINFO = "/proc/self/mountinfo";

/** A path field of mountinfo, its `\ooo` escapes (space, tab, newline, backslash) undone. */
function unescape(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal) => String.fromCharCode(parseInt(octal, 8)));
}

function within(path: string, directory: string): boolean {
  return directory === "/" || path === directory || path.startsWith(directory + "/");
}

/**
 * Whether every file system a path at or under `root` (a real path) can
 * reach is local, by `mountinfo`'s text: the mount that holds `root` and
 * every mount inside it. Anything unreadable counts as not local.
 */
export function onlyLocalMounts(mountinfo: string, root: string): boolean {
  let holder: { point: string; type: string } | undefined;
  for (const line of mountinfo.split("\n")) {
    if (line === "") continue;
    const fields = line.split(" ");
    const dash = fields.indexOf("-");
    if (dash < 6 || fields.length < dash + 2) return false;
    const point = unescape(fields[4]);
    const type = fields[dash + 1];
    if (within(point, root) && point !== root) {
      if (!LOCAL_TYPES.has(type)) return false; // mounted inside the served directory
    } else if (within(root, point) && (!holder || point.length >= holder.point.length)) {
      holder = { point, type }; // the last of equal points is the one on top
    }
  }
  return holder !== undefined && LOCAL_TYPES.has(holder.type);
}

/**
 * The calls for the served directory `root` (a real path): synchronous
 * while its file systems are all local (see above), else async.
 */
export class RootCalls implements FileCalls {
  readonly #root: string;
  #sync = false;
  #checked = -Infinity;
  #checking: Promise<void> | undefined;

  private constructor(root: string) {
    this.#root = root;
  }

  /** The calls for `root`, its mount table read once before the first call. */
  static async of(root: string): Promise<FileCalls> {
    if (Deno.build.os !== "linux") return ASYNC_CALLS;
    // Asked first: where reading it is not granted, Deno would prompt on a terminal.
    if (Deno.permissions.querySync({ name: "read", path: MOUNTINFO }).state !== "granted") {
      return ASYNC_CALLS;
    }
    const calls = new RootCalls(root);
    await calls.#check();
    return calls;
  }

  get sync(): boolean {
    if (performance.now() - this.#checked > REFRESH_MS) this.#checking ??= this.#check();
    return this.#sync;
  }

  async #check(): Promise<void> {
    try {
      this.#sync = onlyLocalMounts(await Deno.readTextFile(MOUNTINFO), this.#root);
    } catch {
      this.#sync = false;
    } finally {
      this.#checked = performance.now();
      this.#checking = undefined;
    }
  }

  realPath(path: string): Promise<string> {
    return this.sync ? now(() => Deno.realPathSync(path)) : Deno.realPath(path);
  }

  stat(path: string): Promise<Deno.FileInfo> {
    return this.sync ? now(() => Deno.statSync(path)) : Deno.stat(path);
  }

  lstat(path: string): Promise<Deno.FileInfo> {
    return this.sync ? now(() => Deno.lstatSync(path)) : Deno.lstat(path);
  }

  open(path: string, options?: Deno.OpenOptions): Promise<Deno.FsFile> {
    return this.sync ? now(() => Deno.openSync(path, options)) : Deno.open(path, options);
  }

  readLink(path: string): Promise<string> {
    return this.sync ? now(() => Deno.readLinkSync(path)) : Deno.readLink(path);
  }
}
