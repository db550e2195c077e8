/**
 * commands/shared/argv.ts splits a command line as node:util's strict
 * `parseArgs` does, and fails with its messages: hand-picked lines (values
 * after flags, `=`, short groups, `--`, dashes as values, unknown flags),
 * then a seeded corpus of random ones.
 */

import assert from "node:assert/strict";
import { rng } from "../fsd/fuzz.ts";
import { parseArgs } from "node:util";
import { type ArgOption, parseArgv } from "../../commands/shared/argv.ts";

const OPTIONS: Record<string, ArgOption> = {
  help: { type: "boolean", short: "h" },
  force: { type: "boolean", short: "f" },
  quiet: { type: "boolean", short: "q" },
  output: { type: "string", short: "o" },
  name: { type: "string" },
  header: { type: "string", short: "H", multiple: true },
  verbose: { type: "boolean", multiple: true, short: "v" },
};

const PICKED: string[][] = [
  [],
  ["host", "10000", "a.txt"],
  ["-", "--", "-x", "--force"],
  ["--force", "a", "-q"],
  ["-fq", "a"],
  ["-fqo", "out", "a"],
  ["-foout", "a"],
  ["-o", "out", "-o", "again"],
  ["-o=x"],
  ["--output", "x", "--output=y"],
  ["--output="],
  ["--output", "-"],
  ["--output", "-x"],
  ["-o", "--"],
  ["-o"],
  ["--output"],
  ["--name", "--force"],
  ["--force=yes"],
  ["-f=yes"],
  ["--bogus"],
  ["-z"],
  ["-fz"],
  ["-5"],
  ["-12"],
  ["--=x"],
  ["---x"],
  ["-H", "a: b", "--header=c: d", "-Hx"],
  ["-vvv", "-v"],
  ["--help", "x"],
  ["-h"],
  ["--__proto__"],
  ["--constructor"],
  ["-o", "-"],
  ["a", "--", "--", "b"],
];

function node(args: string[]): unknown {
  try {
    const { values, positionals } = parseArgs({
      args,
      options: OPTIONS,
      allowPositionals: true,
      strict: true,
    });
    return { values: { ...values }, positionals };
  } catch (error) {
    return { error: (error as Error).message };
  }
}

function ours(args: string[]): unknown {
  try {
    const { values, positionals } = parseArgv(args, OPTIONS);
    return { values: { ...values }, positionals };
  } catch (error) {
    return { error: (error as Error).message };
  }
}

function* corpus(seed: number, count: number): Generator<string[]> {
  const words = [
    "a",
    "-",
    "--",
    "-f",
    "-q",
    "-o",
    "-fo",
    "-of",
    "-fqx",
    "--force",
    "--output",
    "--output=v",
    "--name",
    "--name=",
    "-H",
    "-Hv",
    "-v",
    "-vv",
    "--bogus",
    "-z",
    "-1",
    "x=y",
    "--force=1",
  ];
  const next = rng(seed);
  for (let i = 0; i < count; i++) {
    yield Array.from(
      { length: Math.floor(next() * 6) },
      () => words[Math.floor(next() * words.length)],
    );
  }
}

Deno.test("argv: the same flags, positionals and errors as node:util's strict parseArgs", () => {
  for (const args of [...PICKED, ...corpus(7, 3000)]) {
    assert.deepEqual(ours(args), node(args), JSON.stringify(args));
  }
});
