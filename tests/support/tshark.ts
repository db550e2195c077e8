/**
 * tshark as a test peer: decode capture files with fsd's dissector and read
 * the decoded packets back, one fsd packet at a time.
 */

import { assertTools } from "./tools.ts";

export const DISSECTOR = new URL("../../lib/capture/fsd_dissector.lua", import.meta.url).pathname;

/** Runs tshark with fsd's dissector loaded; returns stdout, throws on failure. Tests that call it take `needs("tshark")`. */
export async function tshark(args: string[]): Promise<string> {
  assertTools("tshark");
  const output = await new Deno.Command("tshark", {
    args: ["-X", `lua_script:${DISSECTOR}`, ...args],
    stdout: "piped",
    stderr: "piped",
    env: { LC_ALL: "C" },
  }).output();
  const stderr = new TextDecoder().decode(output.stderr);
  if (!output.success || /Lua: Error|lua_script.*error/i.test(stderr)) {
    throw new Error(`tshark ${args.join(" ")} failed: ${stderr}`);
  }
  return new TextDecoder().decode(output.stdout);
}

/** One decoded fsd packet: its frame, TCP stream, sending port, and its fsd fields by name. */
export interface DecodedPdu {
  frame: number;
  stream: number;
  srcPort: number;
  /** Info text of the packet (what the Info column shows for it). */
  info: string;
  fields: Record<string, string[]>;
  experts: string[];
}

const unescape = (s: string) =>
  s.replace(/&quot;/g, '"').replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&apos;/g, "'")
    .replace(/&#x([0-9a-f]+);/gi, (_, h) => String.fromCodePoint(parseInt(h, 16)))
    .replace(/&amp;/g, "&");

/** Every fsd packet in `pcap`, in order, from tshark's PDML output. */
export async function decodePdus(pcap: string, extra: string[] = []): Promise<DecodedPdu[]> {
  const pdml = await tshark(["-r", pcap, "-T", "pdml", ...extra]);
  const pdus: DecodedPdu[] = [];
  for (const packet of pdml.split("<packet>").slice(1)) {
    const frame = Number(/name="frame.number"[^>]*show="(\d+)"/.exec(packet)?.[1]);
    const stream = Number(/name="tcp.stream"[^>]*show="(\d+)"/.exec(packet)?.[1]);
    const srcPort = Number(/name="tcp.srcport"[^>]*show="(\d+)"/.exec(packet)?.[1]);
    for (const proto of packet.split('<proto name="fsd"').slice(1)) {
      const body = proto.split("</proto>")[0];
      const info = unescape(/showname="fsd\/1 file service: ([^"]*)"/.exec(body)?.[1] ?? "");
      const fields: Record<string, string[]> = {};
      for (const m of body.matchAll(/<field name="(fsd\.[a-z0-9._]+)"[^>]*? show="([^"]*)"/g)) {
        (fields[m[1]] ??= []).push(unescape(m[2]));
      }
      const experts = [...body.matchAll(/name="_ws.expert.message"[^>]*show="([^"]*)"/g)]
        .map((m) => unescape(m[1]));
      pdus.push({ frame, stream, srcPort, info, fields, experts });
    }
  }
  return pdus;
}

/** The bytes "Follow TCP Stream" shows for `stream`: [client to server, server to client]. */
export async function followRaw(pcap: string, stream = 0): Promise<[Uint8Array, Uint8Array]> {
  const out = await tshark(["-r", pcap, "-qz", `follow,tcp,raw,${stream}`]);
  const lines = out.split("\n");
  const start = lines.findIndex((line) => line.startsWith("Node 1:")) + 1;
  const hex: [string, string] = ["", ""];
  for (const line of lines.slice(start)) {
    if (line.startsWith("====")) break;
    if (line.startsWith("\t")) hex[1] += line.trim();
    else hex[0] += line.trim();
  }
  const bytes = (h: string) => Uint8Array.from(h.match(/../g) ?? [], (b) => parseInt(b, 16));
  return [bytes(hex[0]), bytes(hex[1])];
}
