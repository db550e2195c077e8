/**
 * TFTP windows against sliding windows between fsd's own ends (issue 20, the
 * windows row; not part of CI): one `fsd serve --tftp-only`, and fsd's TFTP
 * client asking for each pair of `windowsize W` and `ackevery K` below (K = W:
 * RFC 7440's windows, an ACK a window; K < W: sliding), at 65464-byte blocks
 * (a window of 3 at most: a default receive buffer) and at 512. Each download
 * is a process of its own writing to /dev/null, the variants interleaved in
 * each round; best and median wall times.
 *
 *   deno run --allow-net=127.0.0.1 --allow-read --allow-write --allow-run bench/tftp_slide.ts [--mb 1024] [--small-mb 20] [--rounds 5]
 *
 * `--get PORT NAME BLKSIZE W K` runs one download alone (the driver spawns it).
 */

import { parseArgs } from "node:util";
import { tftpDownload } from "../lib/tftp/client.ts";
import { fsdServe, printTimes, type Row, timesOfRounds } from "./support.ts";

const { values } = parseArgs({
  options: {
    mb: { type: "string", default: "1024" },
    "small-mb": { type: "string", default: "20" },
    rounds: { type: "string", default: "5" },
    get: { type: "string", multiple: true },
  },
  allowPositionals: true,
  strict: false,
});

async function getOne([port, name, blockSize, w, k]: string[]): Promise<void> {
  const out = await Deno.open("/dev/null", { write: true });
  try {
    const sink = {
      write: (bytes: Uint8Array) => out.write(bytes),
      writeSync: (bytes: Uint8Array) => out.writeSync(bytes),
    };
    const config = {
      hostname: "127.0.0.1",
      port: Number(port),
      blockSize: Number(blockSize),
      windowSize: Number(w),
      ackEvery: Number(k),
    };
    await tftpDownload(config, name, sink);
  } finally {
    out.close();
  }
}

async function drive(): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "fsd-tftp-slide-" });
  const mib = Number(values.mb);
  const small = Number(values["small-mb"]);
  await Deno.writeFile(`${root}/big`, new Uint8Array(mib * 1024 * 1024).fill(7));
  await Deno.writeFile(`${root}/small`, new Uint8Array(small * 1024 * 1024).fill(7));
  const server = await fsdServe(root, ["--tftp-only"]);
  const self = new URL(import.meta.url).pathname;
  const get = (name: string, blockSize: number, w: number, k: number): Row => [
    `${name} blksize ${blockSize} windowsize ${w} ${k < w ? `ackevery ${k}` : "(RFC 7440)"}`,
    [Deno.execPath(), [
      "run",
      "--allow-net=127.0.0.1",
      "--allow-read=/dev/null",
      "--allow-write=/dev/null",
      self,
      "--get",
      String(server.port),
      name,
      String(blockSize),
      String(w),
      String(k),
    ]],
  ];
  const rows: Row[] = [
    get("big", 65464, 3, 3),
    get("big", 65464, 3, 1),
    get("big", 65464, 3, 2),
    get("big", 65464, 2, 1),
    get("small", 512, 3, 3),
    get("small", 512, 3, 1),
    get("small", 512, 16, 16),
    get("small", 512, 16, 8),
    get("small", 512, 16, 1),
  ];
  let times: Map<string, number[]>;
  try {
    times = await timesOfRounds(rows, Number(values.rounds));
  } finally {
    await server.stop();
    await Deno.remove(root, { recursive: true });
  }
  console.log(
    `TFTP windows and sliding windows between fsd's ends: big ${mib} MiB, small ${small} MiB, ${values.rounds} rounds`,
  );
  printTimes(times);
}

if (values.get) await getOne(Deno.args.slice(Deno.args.indexOf("--get") + 1));
else await drive();
