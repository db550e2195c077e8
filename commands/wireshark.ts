/**
 * `fsd wireshark`: print the Lua dissector for fsd, to install into Wireshark.
 * Its help and permissions are declared below, once.
 */

import FSD_DISSECTOR_LUA from "../lib/capture/fsd_dissector.lua" with { type: "text" };
import { writeAll } from "../lib/bytes/source_sink.ts";
import { expectPositionals } from "./shared/cli.ts";
import { defineCommand } from "./shared/command.ts";

const USAGE = "fsd wireshark";

export const wireshark = defineCommand({
  name: "wireshark",
  title: "Print the Wireshark dissector for fsd/1 and its options extension (Lua).",
  usage: USAGE,
  about: `Install it as a personal plugin, then restart Wireshark:
  mkdir -p ~/.local/lib/wireshark/plugins
  fsd wireshark > ~/.local/lib/wireshark/plugins/fsd.lua
Or load it for one run:
  fsd wireshark > fsd.lua
  tshark -X lua_script:fsd.lua -r lab.pcap

It decodes fsd on TCP port 10000, on any port where a session starts with the
server's greeting, and on any port chosen with Decode As. Filter fields:
fsd.opcode, fsd.length, fsd.block, fsd.size, fsd.data, fsd.greeting,
fsd.filename, fsd.error.code, fsd.error.message, fsd.option.count,
fsd.option, fsd.option.name, fsd.option.value, fsd.undecoded, fsd.crc32
and fsd.sha256 (the SUM after a transfer's last DAT).
Record sessions without capture rights with --pcap FILE on fsd proxy, get,
put and ls.`,
  flags: {},
  permissions: "none",
  examples: [
    "fsd wireshark > ~/.local/lib/wireshark/plugins/fsd.lua",
    "tshark -X lua_script:fsd.lua -r lab.pcap -Y 'fsd.opcode == 5'",
  ],
  async run({ positionals }) {
    expectPositionals(positionals, 0, 0, USAGE);
    await writeAll(Deno.stdout, new TextEncoder().encode(FSD_DISSECTOR_LUA));
  },
});
