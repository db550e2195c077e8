/**
 * Accounts for tests of `serve --users` (fsd/1 and HTTP alike): a served
 * root with alice's home and a public file, an accounts file, and a file
 * to upload; scrypt parameters made cheap (FAST) so tests stay quick.
 */

import { hashPassword } from "../../lib/auth/password.ts";
import { tempDir } from "./files.ts";

/** scrypt parameters for tests: cheap, not safe. */
export const FAST = { ln: 10, r: 8, p: 1 };

/**
 * DIR/root (alice/notes.txt, public.txt), DIR/users (alice:wonderland rw
 * with home alice; with `bob`, bob:builder read-only) and DIR/up.txt.
 */
export async function accountsFixture(options: { bob?: boolean } = {}) {
  const dir = await tempDir();
  const root = `${dir.path}/root`;
  await Deno.mkdir(`${root}/alice`, { recursive: true });
  await Deno.writeTextFile(`${root}/alice/notes.txt`, "alice's notes\n");
  await Deno.writeTextFile(`${root}/public.txt`, "for everyone\n");
  const users = `${dir.path}/users`;
  const lines = [`alice:${await hashPassword("wonderland", FAST)}:rw:alice`];
  if (options.bob) lines.push(`bob:${await hashPassword("builder", FAST)}:ro`);
  await Deno.writeTextFile(users, lines.join("\n") + "\n");
  await Deno.writeTextFile(`${dir.path}/up.txt`, "uploaded\n");
  return { dir, root, users, [Symbol.asyncDispose]: () => dir[Symbol.asyncDispose]() };
}
