/**
 * Remote names as a shell user types them, made into names the server's
 * strict rules accept: `./a.txt` is `a.txt`, `dir/` is `dir`, `.` and `./`
 * are the served directory itself (""). Only the client is lenient; what
 * goes on the wire is always a clean name.
 */

/** The clean name for what the user typed. */
export function normalizeRemote(typed: string): string {
  const parts = typed.split("/").filter((part) => part !== "" && part !== ".");
  return parts.join("/");
}

/** Whether the user meant a directory (a trailing `/`, or `.`). */
export function meansDirectory(typed: string): boolean {
  return typed.endsWith("/") || normalizeRemote(typed) === "" || /(^|\/)\.$/.test(typed);
}

/** The last part of a clean name, or undefined for the root. */
export function remoteBase(name: string): string | undefined {
  return name === "" ? undefined : name.slice(name.lastIndexOf("/") + 1);
}

/** `directory/name` on the server ("" is the root). */
export function joinRemote(directory: string, name: string): string {
  return directory === "" ? name : `${directory}/${name}`;
}

/** A name as people read it in messages: quoted when it has spaces or quotes, so it stays unambiguous. */
export function shown(name: string): string {
  return /[\s"'\\]/.test(name) || name === "" ? JSON.stringify(name) : name;
}
