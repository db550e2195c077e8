/**
 * fsd: socket file service and network lab tools, in one command.
 *
 *   deno run --allow-net --allow-read=DIR --allow-write=DIR main.ts serve DIR PORT
 *   deno run --allow-net --allow-read=. --allow-write=. main.ts get HOST PORT REMOTE
 *
 * This module only dispatches to commands/<name>.ts and turns errors into
 * one line on stderr and an exit code: 2 for usage errors, 1 for the rest.
 */

import { type Command, UsageError } from "./commands/cli.ts";
import { echo } from "./commands/echo.ts";
import { get } from "./commands/get.ts";
import { ls } from "./commands/ls.ts";
import { proxy } from "./commands/proxy.ts";
import { put } from "./commands/put.ts";
import { serve } from "./commands/serve.ts";
import { user } from "./commands/user.ts";
import { PeerError } from "./lib/store/errors.ts";
import { VERSION } from "./lib/version.ts";

const COMMANDS: Command[] = [serve, get, put, ls, proxy, echo, user];

const HELP = `fsd ${VERSION}: socket file service and network lab tools

Usage: fsd COMMAND [ARGS...] [OPTIONS]

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(7)}${c.summary}`).join("\n")}

Options:
  -h, --help     show this help (fsd COMMAND --help for a command's)
  -V, --version  show the version

Exit status: 0 success, 1 failure, 2 usage error.
Run 'fsd COMMAND --help' for a command's arguments, permissions and examples.`;

/** Runs one command line; resolves when done, throws what went wrong. */
export async function main(args: string[]): Promise<void> {
  const [name, ...rest] = args;
  if (name === undefined || name === "-h" || name === "--help" || name === "help") {
    if (name === "help" && rest[0]) return await main([rest[0], "--help"]);
    console.log(HELP);
    return;
  }
  if (name === "-V" || name === "--version") {
    console.log(`fsd ${VERSION}`);
    return;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) throw new UsageError(`unknown command: ${name}: see 'fsd --help'`);
  await command.run(rest);
}

function error(message: string, code: number): never {
  console.error(`fsd: ${message}`);
  Deno.exit(code);
}

if (import.meta.main) {
  try {
    await main(Deno.args);
  } catch (e) {
    if (e instanceof UsageError) error(e.message, e.exitCode);
    if (e instanceof PeerError) error(`server error ${e.code}: ${e.message}`, 1);
    error(e instanceof Error ? e.message : String(e), 1);
  }
}
