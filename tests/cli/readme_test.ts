/**
 * README.md as a new user follows it: `fsd` installed with the README's own
 * `deno install` line (into a temporary root), then every command of its sh
 * blocks typed on a pseudo-terminal, top to bottom, in one working
 * directory. No command may show a Deno permission prompt or a missing
 * permission. Servers keep running in the background (a newer one on the
 * same documented port replaces the older), each started on port 0 and
 * its documented port mapped to the one it prints (no free port guessed,
 * so nothing else on the machine can take it first); lab1 is 127.0.0.1,
 * /srv/X and /tmp/ directories of the test.
 * A password prompt gets the password typed. Lines that cannot run here
 * are in SKIP, each with its reason; lines whose documented failure is the
 * point, or that the README's own order makes fail, are in FAILS.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { tempDir } from "../support/files.ts";
import {
  DENIED,
  installFsd,
  PROMPT,
  PtyLine,
  serverPorts,
  startDocumented,
} from "../support/pty.ts";
import { assertTools, needs } from "../support/tools.ts";

const README = new URL("../../README.md", import.meta.url).pathname;
const DENO_JSON = new URL("../../deno.json", import.meta.url).pathname;
const PASSWORD = "readme-secret";

/** Lines that cannot run here, each with the reason. */
const SKIP: [RegExp, string][] = [
  [/^deno install /, "installFsd ran it at the start: it is the `fsd` of every other line"],
  [/task test\b/, "the test suite itself"],
  [/task (check|fuzz|soak|bench)\b/, "development tasks, long runs; CI runs them"],
  [/task compile\b|^sudo /, "deno compile downloads the Deno runtime; sudo installs system-wide"],
  [
    /task bundle\b|dist\/fsd\.js/,
    "deno bundle downloads esbuild; CI's bundle step runs both lines",
  ],
  [/^deno run -A bench\//, "a benchmark (docs/PERFORMANCE.md)"],
  [/^haproxy /, "tests/net/haproxy_test.ts runs deploy/haproxy.cfg"],
];

/** Lines that fail because of the lines before them, with the message expected. */
const FAILS: [RegExp, RegExp, string][] = [
  [
    /^fsd put 127\.0\.0\.1 \d+ notes\.txt$/,
    /file already exists: notes\.txt/,
    "the get examples fetched notes.txt from this server; uploads never replace a file",
  ],
];

/** Lines whose output must show something, that an exit code 0 alone would not prove. */
const SHOWS: [RegExp, RegExp][] = [
  [/^curl -u alice /, /alice's notes/], // Basic login: alice's home is her root
  [/^curl --cacert /, /lab notes/], // HTTPS, verified against the README's certificate
];

/** Lines that read a terminal until end of input: what is typed. */
const TYPED: [RegExp, string][] = [[/^fsd echo 127\.0\.0\.1 \d+$/, "hello room\r\x04"]];

/** Servers the README's lines talk to without starting them: started before the first such line. */
const FIXTURE_SERVERS: [RegExp, string][] = [
  [/lab1 6969 .*--tftp|tftp:\/\/lab1:6969\//, "fsd serve /srv/tftp 6969 --tftp-only"],
  // the TFTP examples replaced the last server on 10000; the next section uses the files served first
  [/a\.txt b\.txt logs\/c\.txt -o/, "fsd serve ./files 10000"],
  // the curl lines: "with --users" needs a server with accounts, then the HTTP example's server again
  [/^curl -u /, "fsd serve /srv/lab 8080 --http-only --users users.txt"],
  [/^curl -s .*\?json/, "fsd serve /srv/lab 10000 --http 8080"],
  // the HTTPS example's server, on its own (the --live line replaced it, as it shares fsd/1's 10000)
  [
    /https:\/\/lab1:8443\//,
    "fsd serve /srv/lab 8443 --http-only --tls-cert cert.pem --tls-key key.pem",
  ],
];

function withFixtureServers(commands: string[]): string[] {
  const started = new Set<string>();
  return commands.flatMap((command) => {
    const server = FIXTURE_SERVERS.find(([pattern]) => pattern.test(command))?.[1];
    if (!server || started.has(server)) return [command];
    started.add(server);
    return [server, command];
  });
}

/** The commands of README.md's sh blocks (and the `$` lines of its console blocks), comments off. */
export function readmeCommands(markdown: string): string[] {
  const out: string[] = [];
  // Indented blocks (inside a list: the instructor's setup) are a scenario of their own, not run here yet.
  for (const block of markdown.matchAll(/(?<=^|\n)```(sh|console)\n([\s\S]*?)```/g)) {
    let pending = "";
    for (const raw of block[2].split("\n")) {
      let line = raw.replace(/\s+#\s.*$/, "").trimEnd();
      if (block[1] === "console") {
        if (!line.startsWith("$ ")) continue;
        line = line.slice(2);
      }
      if (line.trim() === "" || line.trimStart().startsWith("#")) continue;
      if (line.endsWith("\\")) {
        pending += line.slice(0, -1) + " ";
        continue;
      }
      out.push((pending + line).replace(/\s+/g, " ").trim());
      pending = "";
    }
  }
  return out;
}

/** The documented ports: a server's become 0 and then the port it prints. */
const PORTS = /(?<![\w.-])(10000|10001|8080|8443|6969|69|9000|7000|7001|7002)\b/g;

const isServer = (line: string) =>
  /^(fsd (serve|proxy|echo serve) |deno run .* serve |npx -y deno@\S+ task start|deno task start)/
    .test(line);

Deno.test({
  name: "README.md: every command, typed on a terminal with the installed fsd, asks no permission",
  ...needs("script", "openssl", "jq", "curl", "wget"),
  sanitizeOps: false, // the servers' terminals are read in the background
  sanitizeResources: false,
  fn: async () => {
    assertTools("script", "openssl", "jq", "curl", "wget");
    await using dir = await tempDir();
    const work = `${dir.path}/work`;
    const env = {
      ...await installFsd(`${dir.path}/root`),
      HOME: `${dir.path}/home`,
      PW: PASSWORD,
      DENO_DIR: Deno.env.get("DENO_DIR") ?? `${Deno.env.get("HOME")}/.cache/deno`,
    };
    const digests = await fixtures(dir.path, work);
    const ports = new Map<string, string>();
    const port = (p: string) => {
      const real = ports.get(p);
      if (!real) throw new Error(`no server was started on the documented port ${p}`);
      return real;
    };
    const servers: { ports: string[]; pty: PtyLine }[] = [];
    let fingerprint = "";
    try {
      for (
        const documented of withFixtureServers(readmeCommands(await Deno.readTextFile(README)))
      ) {
        if (SKIP.some(([pattern]) => pattern.test(documented))) continue;
        let line = documented
          .replace(/tftp:\/\/lab1\//g, "tftp://lab1:69/")
          .replace(/\blab1(?=[ :/])/g, "127.0.0.1")
          .replace(/(^|\s)\/tmp\//g, `$1${dir.path}/tmp/`)
          .replace(/(^|\s)\/srv\//g, `$1${dir.path}/srv/`)
          .replace(/^FSD_PASSWORD=\.\.\. /, `FSD_PASSWORD=${PASSWORD} `)
          .replace(/9f86d081\.\.\./g, digests.big)
          .replace(/--sha256 HEX\b/g, `--sha256 ${digests.disk}`);
        if (/task start/.test(line)) {
          line = JSON.parse(await Deno.readTextFile(DENO_JSON)).tasks.start;
        }
        if (isServer(line)) {
          if (!/--host /.test(line)) line += " --host 127.0.0.1"; // loopback only, in tests
          const listening = serverPorts(line, PORTS).map((l) => l.port);
          for (const old of servers.filter((s) => s.ports.some((p) => listening.includes(p)))) {
            await old.pty[Symbol.asyncDispose]();
            servers.splice(servers.indexOf(old), 1);
          }
          const server = await startDocumented(line, PORTS, ports, { cwd: work, env });
          servers.push(server);
          fingerprint ||= /fingerprint: (SHA256:\S+)/.exec(server.pty.output)?.[1] ?? "";
          continue;
        }
        line = line.replace(PORTS, port).replace(/SHA256:6E:F2:1A:\.\.\./g, fingerprint);
        if (/(^|\s)fsd get /.test(line) && !/--force/.test(line)) {
          // a person who already has the file whole from an example above moves it away first
          // (--continue resumes a partial download, never a whole file)
          for (const name of ["notes.txt", "big.iso", "disk.img", "../tmp/disk.img"]) {
            if (line.includes(name.replace("../tmp/", ""))) {
              await Deno.remove(`${work}/${name}`).catch(() => {});
            }
          }
        }
        await using client = new PtyLine(line, { cwd: work, env });
        const typed = TYPED.find(([pattern]) => pattern.test(line))?.[1];
        if (typed) await client.type(typed);
        while (
          await client.waitFor(
            /(Password for \w+: |Again: |password for user '\w+': ?)$/,
            30_000,
            line,
          )
        ) {
          assert.ok(!/FSD_PASSWORD=/.test(line), `${documented}: FSD_PASSWORD was not read`);
          client.output += "\n";
          await client.type(`${PASSWORD}\r`);
        }
        const code = await client.finish(30_000, line);
        const shown = client.output;
        assert.ok(!PROMPT.test(shown), `${documented}: a Deno prompt:\n${shown}`);
        assert.ok(!DENIED.test(shown), `${documented}: a missing permission:\n${shown}`);
        const fails = FAILS.find(([pattern]) => pattern.test(line));
        if (fails) assert.match(shown, fails[1], `${documented}: expected to fail`);
        else assert.equal(code, 0, `${documented} (run as: ${line}):\n${shown}`);
        const shows = SHOWS.find(([pattern]) => pattern.test(line))?.[1];
        if (shows) assert.match(shown, shows, `${documented} (run as: ${line})`);
      }
    } finally {
      for (const server of servers) await server.pty[Symbol.asyncDispose]();
    }
  },
});

/** The files the README's examples name, on the servers and locally; returns big.iso's and /srv/lab's disk.img's SHA-256. */
async function fixtures(root: string, work: string): Promise<{ big: string; disk: string }> {
  const files = `${work}/files`;
  for (
    const d of [
      `${root}/home`,
      `${root}/tmp`,
      `${root}/srv/lab/images`,
      `${root}/srv/lab/reports`,
      `${root}/srv/lab/alice`,
      `${root}/srv/iso`,
      `${root}/srv/tftp/images`,
      `${root}/srv/tftp/reports`,
      `${root}/srv/pxe/127.0.0.1/images`,
      `${files}/images/more`,
      `${files}/reports`,
      `${files}/logs`,
      `${files}/alice`,
      `${work}/build`,
      `${work}/site/css`,
      `${work}/src`,
    ]
  ) await Deno.mkdir(d, { recursive: true });
  // the `deno run ... main.ts` lines run from a clone: work/ is one
  const repo = new URL("../../", import.meta.url).pathname;
  const copied = await new Deno.Command("cp", {
    args: ["-r", "main.ts", "deno.json", "commands", "lib", work],
    cwd: repo,
  }).output();
  assert.ok(copied.success, "cp");
  const write = (path: string, text: string) => Deno.writeTextFile(path, text);
  const big = new Uint8Array(300_000).map((_, i) => i % 251);
  const disk = new Uint8Array(100_000).map((_, i) => i % 241);
  await Promise.all([
    write(`${files}/notes.txt`, "hello notes\n"),
    write(`${files}/alice/notes.txt`, "alice's notes\n"),
    write(`${files}/data.csv`, "a,b\n1,2\n"),
    write(`${files}/images/disk.img`, "disk image\n"),
    write(`${files}/images/more/b.img`, "b\n"),
    write(`${files}/a.txt`, "a\n"),
    write(`${files}/b.txt`, "b\n"),
    write(`${files}/logs/c.txt`, "c\n"),
    Deno.writeFile(`${files}/big.iso`, big),
    write(`${root}/srv/tftp/images/disk.img`, "tftp disk\n"),
    write(`${root}/srv/pxe/127.0.0.1/images/disk.img`, "pxe disk\n"),
    write(`${work}/report.pdf`, "%PDF report\n"),
    write(`${work}/a.pdf`, "%PDF a\n"),
    write(`${work}/b.pdf`, "%PDF b\n"),
    write(`${root}/srv/lab/notes.txt`, "lab notes\n"),
    write(`${root}/srv/lab/alice/notes.txt`, "alice's notes\n"),
    Deno.writeFile(`${root}/srv/lab/images/disk.img`, disk),
    write(`${work}/build/report.pdf`, "%PDF build\n"),
    write(`${work}/one.log`, "one\n"),
    write(`${work}/two.log`, "two\n"),
    write(`${work}/site/index.html`, "<p>site</p>\n"),
    write(`${work}/src/main.c`, "int main(void) { return 0; }\n"),
    write(`${work}/site/css/a.css`, "p{}\n"),
  ]);
  const sha256 = (data: Uint8Array) => createHash("sha256").update(data).digest("hex");
  return { big: sha256(big), disk: sha256(disk) };
}
