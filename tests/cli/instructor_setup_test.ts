/**
 * README.md's instructor setup (issue 19: it was run by no test), taken from
 * the README itself and run as a person would: the instructor makes the
 * folders, adds the accounts typing each password twice on a terminal and
 * starts the server; then each client runs on "its own machine" (an empty
 * folder of its own, holding only the file it sends), `lab1` being the
 * server on loopback, typing its password at the prompt. The server's lines
 * that the block shows as comments must be what it prints, and every file
 * must land where the block says.
 */

import assert from "node:assert/strict";
import { runFsd, spawnFsd } from "../support/cli.ts";
import { tempDir } from "../support/files.ts";
import { onTerminal } from "../support/terminal.ts";
import { assertTools, needs } from "../support/tools.ts";

const README = new URL("../../README.md", import.meta.url).pathname;

/** The sh block of the README's "An instructor's setup" item, its two-space indent off. */
export function instructorBlock(markdown: string): string[] {
  const lines = markdown.split("\n");
  const item = lines.findIndex((line) => line.startsWith("- An instructor's setup"));
  assert.ok(item >= 0, "README.md has no instructor's setup");
  const open = lines.findIndex((line, i) => i > item && line.trim() === "```sh");
  const close = lines.findIndex((line, i) => i > open && line.trim() === "```");
  assert.ok(open > item && close > open, "the instructor's setup has no sh block");
  return lines.slice(open + 1, close).map((line) => line.replace(/^ {2}/, ""));
}

/** A command line's words, its comment off (the block quotes nothing). */
function words(line: string): string[] {
  return line.replace(/\s#.*$/, "").trim().split(/\s+/);
}

const passwordOf = (user: string) => `${user}-secret`;

Deno.test({
  name: "README.md: the instructor's setup runs as written, every file where it says",
  ...needs("script"),
  fn: async () => {
    assertTools("script");
    const block = instructorBlock(await Deno.readTextFile(README));
    await using dir = await tempDir();
    const instructor = `${dir.path}/instructor`;
    await Deno.mkdir(instructor);
    const commands = block.filter((line) => line.trim() !== "" && !line.startsWith("#"));
    const shown = block.filter((line) => line.startsWith("#   ")).map((line) => line.slice(4));
    assert.ok(commands.length >= 8 && shown.length >= 2, block.join("\n"));
    let server: Awaited<ReturnType<typeof spawnFsd>> | undefined;
    /** The README's ports to the ones the server got (it listens on port 0). */
    const ports = new Map<string, string>();
    const machines: string[] = [];
    try {
      for (const line of commands) {
        const args = words(line);
        if (args[0] === "mkdir") {
          const made = await new Deno.Command(args[0], { args: args.slice(1), cwd: instructor })
            .output();
          assert.ok(made.success, line);
        } else if (args[0] === "fsd" && args[1] === "user") {
          const user = args[4];
          const typed = `${passwordOf(user)}\r`;
          const { code, output } = await onTerminal(
            [`--allow-read=${instructor}`, `--allow-write=${instructor}`],
            args.slice(1),
            [{ after: new RegExp(`Password for ${user}: `), type: typed }, {
              after: /Again: /,
              type: typed,
            }],
            instructor,
          );
          assert.equal(code, 0, `${line}\n${output}`);
        } else if (args[0] === "fsd" && args[1] === "serve") {
          const [fsdPort, tftpPort] = [args[3], args[args.indexOf("--tftp") + 1]];
          const started = args.slice(1).map((word) =>
            word === fsdPort || word === tftpPort ? "0" : word
          );
          server = await spawnFsd(
            [...started, "--host", "127.0.0.1"],
            [
              "--allow-net=127.0.0.1",
              `--allow-read=${instructor}`,
              `--allow-write=${instructor}/lab`,
            ],
            /^TFTP server listening on /,
            undefined,
            instructor,
          );
          const fsdLine = server.lines.find((l) => l.startsWith("File server listening on "));
          ports.set(fsdPort, /port (\d+)$/.exec(fsdLine ?? "")?.[1] ?? "");
          ports.set(tftpPort, String(server.port));
          for (const text of shown) assert.ok(server.lines.includes(text), server.lines.join("\n"));
        } else {
          assert.ok(server, `a client before the server: ${line}`);
          const client = args.slice(1).map((word) =>
            word === "lab1" ? "127.0.0.1" : ports.get(word) ??
              word.replace(
                /^tftp:\/\/lab1:(\d+)/,
                (_, port) => `tftp://127.0.0.1:${ports.get(port)}`,
              )
          );
          // Its own machine: an empty folder with the file it sends, if any.
          const machine = await Deno.makeTempDir({ dir: dir.path, prefix: "machine-" });
          machines.push(machine);
          const user = args.includes("--user") ? args[args.indexOf("--user") + 1] : undefined;
          if (client[0] === "put") await Deno.writeTextFile(`${machine}/${client[3]}`, line);
          const permissions = [
            "--allow-net=127.0.0.1",
            `--allow-read=${machine}`,
            `--allow-write=${machine}`,
          ];
          const result = user === undefined
            ? await runFsd(permissions, client, { cwd: machine })
            : await onTerminal(permissions, client, [{
              after: new RegExp(`Password for ${user}: `),
              type: `${passwordOf(user)}\r`,
            }], machine).then(({ code, output }) => ({ code, stderr: output }));
          assert.equal(result.code, 0, `${line}\n${result.stderr}`);
        }
      }
    } finally {
      await server?.stop();
    }
    // Where the block says each file lands.
    const lab = `${instructor}/lab`;
    const handout = await Deno.readTextFile(`${lab}/handouts/sheet1.pdf`);
    assert.match(handout, /--user teacher/);
    const fetched = machines.filter((m) => {
      try {
        return Deno.readTextFileSync(`${m}/sheet1.pdf`) === handout;
      } catch {
        return false;
      }
    });
    assert.equal(fetched.length, 3, "the teacher's copy and the two downloads (fsd/1 and TFTP)");
    assert.match(await Deno.readTextFile(`${lab}/uploads/alice/hw1.txt`), /--user alice/);
    assert.match(await Deno.readTextFile(`${lab}/uploads/bob/hw1.txt`), /--user bob/);
    assert.deepEqual([...Deno.readDirSync(lab)].map((e) => e.name).sort(), ["handouts", "uploads"]);
  },
});
