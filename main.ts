/**
 * fsd: socket file service and network lab tools, in one command.
 *
 *   deno run --allow-net --allow-read=DIR --allow-write=DIR main.ts serve DIR PORT
 *   deno run --allow-net --allow-read=. --allow-write=. main.ts get HOST PORT REMOTE
 *
 * This module only dispatches to commands/<name>.ts, which it loads only
 * for the command that runs, and turns errors into
 * one line on stderr and an exit code: 2 for usage errors, 1 for the rest.
 * With FSD_DEBUG=1 (and --allow-env=FSD_DEBUG) it also prints the stack and
 * the chain of causes.
 */

// Only what `fsd --version` needs is imported up front (each module costs start-up time);
// the error classes come with the command, or when something failed.
import type { Command } from "./commands/shared/command.ts";
import { VERSION } from "./lib/version.ts";
import { isServeWorker } from "./lib/fsd/worker_name.ts";
import { isTftpSender } from "./lib/tftp/sender_name.ts";

const cli = () => import("./commands/shared/cli.ts");

/**
 * The commands, each loaded only when dispatched (its modules are imported
 * then, and nothing else's): `fsd --version` loads none.
 */
export const COMMANDS: { name: string; summary: string; load(): Promise<Command> }[] = [
  {
    name: "serve",
    summary: "serve a directory",
    load: async () => (await import("./commands/serve.ts")).serve,
  },
  {
    name: "get",
    summary: "download files or a tree",
    load: async () => (await import("./commands/get.ts")).get,
  },
  {
    name: "put",
    summary: "upload files or a tree",
    load: async () => (await import("./commands/put.ts")).put,
  },
  {
    name: "ls",
    summary: "list a directory",
    load: async () => (await import("./commands/ls.ts")).ls,
  },
  {
    name: "proxy",
    summary: "relay TCP connections, showing the traffic and injecting faults",
    load: async () => (await import("./commands/proxy.ts")).proxy,
  },
  {
    name: "echo",
    summary: "echo, upper-case, ceiling and chat servers and clients; round-trip times",
    load: async () => (await import("./commands/echo.ts")).echo,
  },
  {
    name: "wireshark",
    summary: "print the Wireshark dissector for fsd (Lua)",
    load: async () => (await import("./commands/wireshark.ts")).wireshark,
  },
  {
    name: "user",
    summary: "manage the accounts file of serve --users",
    load: async () => (await import("./commands/user.ts")).user,
  },
];

const HELP = `fsd ${VERSION}: socket file service and network lab tools

Usage: fsd COMMAND [ARGS...] [OPTIONS]

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(10)}${c.summary}`).join("\n")}

Options:
  -h, --help     show this help (fsd COMMAND --help for a command's)
  -V, --version  show the version

Exit status: 0 success, 1 failure, 2 usage error.
Run 'fsd COMMAND --help' for a command's arguments, permissions and examples.`;

/** Runs one command line; resolves when done, throws what went wrong. */
export async function main(args: string[]): Promise<void> {
  const [name, ...rest] = args;
  if (name === undefined) {
    console.error(HELP);
    throw new (await cli()).CommandError("", { exitCode: 2 });
  }
  if (name === "-h" || name === "--help" || name === "help") {
    if (name === "help" && rest[0]) return await main([rest[0], "--help"]);
    console.log(HELP);
    return;
  }
  if (name === "-V" || name === "--version") {
    console.log(`fsd ${VERSION}`);
    return;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) throw new (await cli()).UsageError(`unknown command: ${name}: see 'fsd --help'`);
  await (await command.load()).run(rest);
}

/** The top level: one `fsd: ...` line per failure; with FSD_DEBUG=1 also the stack and the causes. */
async function fail(e: unknown): Promise<never> {
  const { CommandError, UsageError } = await cli();
  const { PeerError } = await import("./lib/store/errors.ts");
  const { errorMessage } = await import("./lib/bytes/source_sink.ts");
  if (e instanceof UsageError) exit(e.message, e.exitCode);
  if (e instanceof CommandError && e.message === "") Deno.exit(e.exitCode);
  if (debugging()) console.error(causeChain(e));
  if (e instanceof PeerError) exit(`server error ${e.code}: ${e.message}`, 1);
  if (e instanceof CommandError) exit(e.message, e.exitCode);
  const device = e instanceof Deno.errors.NotCapable &&
    /^Requires all access to "(.*)"/.exec(e.message);
  if (device) {
    // Deno opens /dev and /proc paths (but /dev/null) only with --allow-all, which no fsd line grants
    exit(`cannot open ${device[1]}: a device: use - (stdin or stdout) and redirect instead`, 1);
  }
  exit(errorMessage(e), 1);
}

function exit(message: string, code: number): never {
  console.error(`fsd: ${message}`);
  Deno.exit(code);
}

/** FSD_DEBUG=1, read only where the environment may be read (no permission prompt). */
function debugging(): boolean {
  const allowed = Deno.permissions.querySync({ name: "env", variable: "FSD_DEBUG" });
  return allowed.state === "granted" && Deno.env.get("FSD_DEBUG") === "1";
}

/** The error's stack, then each cause's, in order. */
function causeChain(e: unknown): string {
  const lines: string[] = [];
  for (let cause = e, depth = 0; cause !== undefined && depth < 10; depth++) {
    lines.push(
      (depth > 0 ? "caused by: " : "") + (cause instanceof Error ? cause.stack : String(cause)),
    );
    cause = cause instanceof Error ? cause.cause : undefined;
  }
  return lines.join("\n");
}

if (import.meta.main && isServeWorker()) {
  // `fsd serve --workers N` runs this module once per worker.
  (await import("./lib/fsd/worker_pool.ts")).serveInWorker();
} else if (import.meta.main && isTftpSender()) {
  // `fsd serve --tftp` runs this module once per sender thread (lib/tftp/send_pool.ts).
  (await import("./lib/tftp/sender.ts")).sendInWorker();
} else if (import.meta.main) {
  try {
    await main(Deno.args);
  } catch (e) {
    await fail(e);
  }
}
