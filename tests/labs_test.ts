/**
 * docs/LABS.md runs as written: every `$` command in its sh blocks, on
 * loopback, in one temporary directory, servers (commands ending in `&`)
 * kept running in the background until the end, and the lines printed
 * under each command found in its output. The documented ports are moved
 * to free ones so that the test never collides with anything else.
 */

import assert from "node:assert/strict";
import { MAIN, tempDir, withDeadline } from "./helpers.ts";
import { assertTools, needs } from "./support/tools.ts";

const LABS = new URL("../docs/LABS.md", import.meta.url).pathname;
const FSD =
  `${Deno.execPath()} run --quiet --no-prompt --allow-net --allow-read --allow-write ${MAIN}`;

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

/** Free TCP ports for the documented ones. */
function freePorts(text: string): Map<string, string> {
  const ports = new Map<string, string>();
  for (const [port] of text.matchAll(/\b(7\d{3}|9\d{3}|1000\d)\b/g)) {
    if (ports.has(port)) continue;
    const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    ports.set(port, String(probe.addr.port));
    probe.close();
  }
  return ports;
}

function shell(command: string, cwd: string, background: boolean) {
  const line = command.replace(/(^|[|;&(]\s*)fsd /g, `$1${FSD} `);
  return new Deno.Command("bash", {
    args: ["-c", background ? `exec ${line.replace(/\s*&$/, "")}` : line],
    cwd,
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
    env: { NO_COLOR: "1" },
  });
}

/** Starts a server and resolves once it says it is listening; its output keeps draining. */
async function startBackground(command: string, cwd: string) {
  const child = shell(command, cwd, true).spawn();
  const stderr = new Response(child.stderr).text();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  while (!/port \d+/.test(seen)) {
    const { value, done } = await withDeadline(reader.read(), `start: ${command}`);
    if (done) throw new Error(`${command}: exited: ${await stderr}`);
    seen += value;
  }
  const draining = (async () => {
    while (!(await reader.read()).done) { /* drain */ }
  })();
  return {
    async stop() {
      child.kill("SIGTERM");
      await Promise.all([child.status, draining, stderr]);
    },
  };
}

/** Runs one command and finds each line the page shows under it in its output. */
async function run(step: Step, command: string, cwd: string, remap: (text: string) => string) {
  const output = await withDeadline(shell(command, cwd, false).output(), command, 30_000);
  const text = new TextDecoder().decode(output.stdout) +
    new TextDecoder().decode(output.stderr);
  const failing = step.expected.some((line) => line.startsWith("fsd: "));
  assert.equal(output.success, !failing, `${step.command}:\n${text}`);
  const lines = text.split("\n").map((line) => line.trimEnd());
  for (const expected of step.expected.map(remap)) {
    assert.ok(
      // short lines (a number, a word) must match whole; longer ones may sit inside a line (after a time)
      lines.some((line) => line === expected || (expected.length >= 8 && line.includes(expected))),
      `${step.command}: expected ${JSON.stringify(expected)} in:\n${text}`,
    );
  }
}

Deno.test("docs/LABS.md: every command runs on loopback and prints what the page shows", async (t) => {
  const markdown = await Deno.readTextFile(LABS);
  const ports = freePorts(steps(markdown).map((s) => s.command).join("\n"));
  const remap = (text: string) =>
    text.replace(/\b(7\d{3}|9\d{3}|1000\d)\b/g, (p) => ports.get(p) ?? p);
  await using dir = await tempDir();
  const servers: { stop(): Promise<void> }[] = [];
  try {
    for (const step of steps(markdown)) {
      const command = remap(step.command);
      if (command.trimEnd().endsWith("&") && !command.includes("wait")) {
        servers.push(await startBackground(command, dir.path));
        continue;
      }
      if (/^tshark /.test(command)) {
        // a step: ignored (with a note) where tshark is missing, failing under CI
        await t.step({
          name: step.command,
          ...needs("tshark"),
          sanitizeOps: false, // the servers in the background keep reading
          sanitizeResources: false,
          fn: () => {
            assertTools("tshark");
            return run(step, command, dir.path, remap);
          },
        });
      } else await run(step, command, dir.path, remap);
    }
  } finally {
    for (const server of servers.reverse()) await server.stop();
  }
});
