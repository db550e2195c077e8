/**
 * defineCommand (commands/shared/command.ts) and the value parsers
 * (commands/shared/values.ts) on their own: values typed as declared,
 * defaults, ranges, negative numbers, repeated flags, sides, and the help
 * and permission list made from the declarations. The eight real commands
 * are checked flag by flag in tests/cli/cli_test.ts.
 */

import assert from "node:assert/strict";
import { UsageError } from "../../commands/shared/cli.ts";
import { defineCommand, type Parsed, parseFlags } from "../../commands/shared/command.ts";
import { integer, oneOf, rate, seconds, size } from "../../commands/shared/values.ts";

const FLAGS = {
  count: { arg: "N", value: integer(1, 10), default: "3", help: "how many" },
  wait: { arg: "SECONDS", value: seconds({ min: 0 }), help: "how long" },
  big: { arg: "SIZE", value: size, help: "how big" },
  mode: { arg: "MODE", value: oneOf("a", "b"), default: "a", help: "which" },
  loss: { arg: "RATE", value: rate({ zero: true, percent: true }), help: "how lossy" },
  tag: { arg: "TAG", multiple: true, help: "a label" },
  loud: { type: "boolean", short: "l", help: "say more", side: "server" },
  name: { arg: "NAME", help: "who", side: "client", permission: "--allow-env=NAME" },
} as const;

function usageError(run: () => unknown, pattern: RegExp): void {
  assert.throws(run, (error: Error) => {
    assert.ok(error instanceof UsageError, String(error));
    assert.match(error.message, pattern);
    return true;
  });
}

Deno.test("command: values come typed, defaults as if typed, booleans false when absent", () => {
  const parsed = parseFlags(
    ["x", "--wait", "1.5", "--big", "2K", "--tag", "p", "--tag", "q"],
    FLAGS,
  )!;
  assert.deepEqual(parsed.positionals, ["x"]);
  assert.equal(parsed.values.count, 3);
  assert.equal(parsed.values.wait, 1500);
  assert.equal(parsed.values.big, 2048);
  assert.equal(parsed.values.mode, "a");
  assert.equal(parsed.values.loss, undefined);
  assert.deepEqual(parsed.values.tag, ["p", "q"]);
  assert.equal(parsed.values.loud, false);
  assert.deepEqual(parsed.given.sort(), ["big", "tag", "wait"]);
  assert.equal(parseFlags(["-l", "--loss", "5%"], FLAGS)!.values.loss, 0.05);
  assert.equal(parseFlags(["--help"], FLAGS), undefined);
});

Deno.test("command: out of range, negative, wrong kind and unknown are usage errors", () => {
  usageError(
    () => parseFlags(["--count", "11"], FLAGS),
    /^invalid --count: 11: out of range: expected 1 to 10$/,
  );
  usageError(() => parseFlags(["--count", "-1"], FLAGS), /^invalid --count: -1: out of range/);
  usageError(() => parseFlags(["--count=-1"], FLAGS), /^invalid --count: -1: out of range/);
  usageError(
    () => parseFlags(["--count", "2.5"], FLAGS),
    /^invalid --count: 2\.5: expected a whole number/,
  );
  usageError(() => parseFlags(["--wait", "-2"], FLAGS), /^invalid --wait: -2: out of range/);
  usageError(() => parseFlags(["--mode", "c"], FLAGS), /^invalid --mode: c: expected a or b$/);
  usageError(() => parseFlags(["--loss", "2"], FLAGS), /^invalid --loss: 2: expected a rate/);
  usageError(() => parseFlags(["--big", "lots"], FLAGS), /^invalid --big: lots: expected a size/);
  usageError(() => parseFlags(["--bogus"], FLAGS), /^unknown option '--bogus'/);
  usageError(
    () => parseFlags(["-5"], FLAGS),
    /^unknown option '-5': .*put it after --, as in: -- -5$/,
  );
  assert.deepEqual(parseFlags(["--", "-5"], FLAGS)!.positionals, ["-5"]);
  usageError(() => parseFlags(["--loud=yes"], FLAGS), /--loud' does not take an argument/);
  usageError(() => parseFlags(["--name"], FLAGS), /'--name <value>' argument missing/);
});

Deno.test("command: a flag of the other side is refused; help and permissions come from the flags", async () => {
  const seen: Parsed<typeof FLAGS>[] = [];
  const command = defineCommand({
    name: "demo",
    title: "A demo.",
    usage: ["fsd demo serve", "fsd demo HOST"],
    flags: FLAGS,
    permissions: "--allow-net",
    examples: ["fsd demo serve -l"],
    side: {
      of: (positionals) => positionals[0] === "serve" ? "server" : "client",
      names: { server: "the server", client: "the client" },
    },
    run: (parsed) => {
      seen.push(parsed);
      return Promise.resolve();
    },
  });
  await command.run(["serve", "--loud"]);
  assert.equal(seen[0].side, "server");
  assert.equal(seen[0].values.loud, true);
  await assert.rejects(
    () => command.run(["h", "--loud"]),
    { name: "UsageError", message: "--loud is an option of the server, not the client" },
  );
  await assert.rejects(
    () => command.run(["serve", "--name", "x"]),
    { name: "UsageError", message: "--name is an option of the client, not the server" },
  );
  assert.equal(seen.length, 1);
  const help = command.help;
  assert.match(help, /^A demo\.\n\nUsage: fsd demo serve\n {7}fsd demo HOST\n/);
  assert.match(help, /^ {2}--count N +how many \(default 3\)$/m);
  assert.match(help, /^ {2}-l, --loud +say more$/m);
  assert.match(help, /^ {2}-h, --help +show this help$/m);
  assert.match(help, /\nPermissions: --allow-net\n {2}with --name NAME: --allow-env=NAME\n/);
  assert.match(help, /\nExamples:\n {2}fsd demo serve -l$/);
});

Deno.test("command: a default that its own parser refuses fails at definition", () => {
  usageError(
    () =>
      defineCommand({
        name: "bad",
        title: "Bad.",
        usage: "fsd bad",
        flags: { n: { arg: "N", value: integer(1), default: "0", help: "n" } },
        permissions: "none",
        examples: [],
        run: () => Promise.resolve(),
      }),
    /^invalid --n: 0: out of range/,
  );
});
