/**
 * docs/LABS.md runs as a student types it: `fsd` installed with the
 * README's `deno install` line, every `$` command of its sh blocks on a
 * pseudo-terminal, on loopback, in one temporary directory; servers
 * (commands ending in `&`) kept running in the background until the end,
 * and the lines printed under each command found in its output. No
 * command may show a Deno permission prompt. Each command runs with a job
 * already in the background, as in the student's shell, so that a bare
 * `wait` hangs here as it would there. Each server starts on port 0 and
 * its documented port is mapped to the one it prints, so that the test
 * never collides with anything else on the machine.
 */

import assert from "node:assert/strict";
import { tempDir } from "../support/files.ts";
import { DENIED, installFsd, PROMPT, PtyLine, startDocumented } from "../support/pty.ts";
import { assertTools, needs } from "../support/tools.ts";

const LABS = new URL("../../docs/LABS.md", import.meta.url).pathname;

interface Step {
  command: string;
  expected: string[];
}

/** The `$` commands of every sh block, each with the lines shown under it. */
function steps(markdown: string): Step[] {
  const out: Step[] = [];
  for (const block of markdown.matchAll(/```sh\n([\s\S]*?)```/g)) {
    for (const line of block[1].split("\n")) {
      if (line.startsWith("$ ")) out.push({ command: line.slice(2), expected: [] });
      else if (line.trim() !== "") out.at(-1)?.expected.push(line.trimEnd());
    }
  }
  return out;
}

/** The documented ports: a server's become 0 and then the port it prints. */
const PORTS = /\b(7\d{3}|9\d{3}|1000\d)\b/g;

/** What the terminal showed, as lines: no carriage returns, no erase-line escapes. */
const shownLines = (output: string) =>
  output.replace(new RegExp("\u001b\\[[0-9;]*[A-Za-z]", "g"), "").split(/\r?\n|\r/).map((line) =>
    line.trimEnd()
  );

/** Runs one command and finds each line the page shows under it in its output. */
async function run(step: Step, command: string, cwd: string, env: Record<string, string>) {
  // a job in the background, as the student's servers are: a bare `wait` would wait for it too
  const line = `sleep 120 & standin=$!; { ${command}\n}; status=$?; kill $standin; exit $status`;
  await using pty = new PtyLine(line, { cwd, env });
  const code = await pty.finish(30_000, command);
  const lines = shownLines(pty.output);
  const text = lines.join("\n");
  assert.ok(!PROMPT.test(text), `${step.command}: a Deno prompt:\n${text}`);
  assert.ok(!DENIED.test(text), `${step.command}: a missing permission:\n${text}`);
  const failing = step.expected.some((line) => line.startsWith("fsd: "));
  assert.equal(code === 0, !failing, `${step.command}:\n${text}`);
  return lines;
}

Deno.test({
  name:
    "docs/LABS.md: every command, typed on a terminal, runs on loopback and prints what the page shows",
  ...needs("script"),
  sanitizeOps: false, // the servers' terminals are read in the background
  sanitizeResources: false,
  fn: async (t) => {
    assertTools("script");
    const markdown = await Deno.readTextFile(LABS);
    const ports = new Map<string, string>();
    const remap = (text: string) => text.replace(PORTS, (p) => ports.get(p) ?? p);
    await using dir = await tempDir();
    const env = await installFsd(`${dir.path}/root`);
    const cwd = `${dir.path}/work`;
    await Deno.mkdir(cwd);
    const servers: PtyLine[] = [];
    const check = async (step: Step, command: string) => {
      const lines = await run(step, command, cwd, env);
      for (const expected of step.expected.map(remap)) {
        assert.ok(
          // short lines (a number, a word) must match whole; longer ones may sit inside a line (after a time)
          lines.some((line) =>
            line === expected || (expected.length >= 8 && line.includes(expected))
          ),
          `${step.command}: expected ${JSON.stringify(expected)} in:\n${lines.join("\n")}`,
        );
      }
    };
    try {
      for (const step of steps(markdown)) {
        if (step.command.trimEnd().endsWith("&")) {
          const line = step.command.replace(/\s*&$/, "");
          servers.push((await startDocumented(line, PORTS, ports, { cwd, env })).pty);
          continue;
        }
        const command = remap(step.command);
        if (/^tshark /.test(command)) {
          // a step: ignored (with a note) where tshark is missing, failing under CI
          await t.step({
            name: step.command,
            ...needs("tshark"),
            sanitizeOps: false,
            sanitizeResources: false,
            fn: () => {
              assertTools("tshark");
              return check(step, command);
            },
          });
        } else await check(step, command);
      }
    } finally {
      for (const server of servers.reverse()) await server[Symbol.asyncDispose]();
    }
  },
});
