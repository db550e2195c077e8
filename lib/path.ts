/**
 * POSIX path names: `join`, `normalize`, `dirname`, `basename`, with node:path's results
 * (tests/cli/path_test.ts holds them to node:path's on a corpus).
 *
 * fsd's own, not node:path: importing node:path loads more of Deno's Node
 * compatibility layer at start-up (with node:util, 3 to 10 ms of every
 * `fsd get`, `put` and `ls`: docs/PERFORMANCE.md, "Issue 20, session 33"),
 * and these are all fsd needs. A leaf: it imports nothing, and anything may import it.
 */

/** `a/b/../c` as `a/c`: `.` and empty parts dropped, `..` taken back where it can be. */
export function normalize(path: string): string {
  if (path === "") return ".";
  const absolute = path.startsWith("/");
  const trailing = path.endsWith("/");
  const parts: string[] = [];
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue;
    if (part !== "..") parts.push(part);
    else if (parts.length > 0 && parts[parts.length - 1] !== "..") parts.pop();
    else if (!absolute) parts.push(part);
  }
  const body = parts.join("/");
  if (body === "") return absolute ? "/" : trailing ? "./" : ".";
  return (absolute ? "/" : "") + body + (trailing ? "/" : "");
}

/** The non-empty parts joined with `/`, then normalized (`.` when there are none). */
export function join(...parts: string[]): string {
  const joined = parts.filter((part) => part !== "").join("/");
  return joined === "" ? "." : normalize(joined);
}

/** The last part, trailing slashes ignored (`""` for `/`). */
export function basename(path: string): string {
  let end = path.length;
  while (end > 0 && path[end - 1] === "/") end--;
  return path.slice(path.lastIndexOf("/", end - 1) + 1, end);
}

/** Everything before the last part (`.` when there is none, `/` at the root). */
export function dirname(path: string): string {
  if (path === "") return ".";
  const rooted = path.startsWith("/");
  let end = -1;
  let inTrailingSlashes = true;
  for (let i = path.length - 1; i >= 1; i--) {
    if (path[i] !== "/") inTrailingSlashes = false;
    else if (!inTrailingSlashes) {
      end = i;
      break;
    }
  }
  if (end === -1) return rooted ? "/" : ".";
  if (rooted && end === 1) return "//";
  return path.slice(0, end);
}
