/**
 * Writes lib/capture/fsd_dissector_lua.ts from lib/capture/fsd_dissector.lua,
 * so the single fsd program carries the dissector (`fsd wireshark` prints it).
 * tests/dissector_test.ts fails when the two differ.
 *
 *   deno run --allow-read=lib/capture --allow-write=lib/capture tools/embed_dissector.ts
 */

const dir = new URL("../lib/capture/", import.meta.url);
const lua = await Deno.readTextFile(new URL("fsd_dissector.lua", dir));
const lines = lua.split("\n").map((line) => `  ${JSON.stringify(line)},`);
const module = `// Generated from fsd_dissector.lua by tools/embed_dissector.ts: do not edit.

/** The Wireshark dissector for fsd, as \`fsd wireshark\` prints it. */
export const FSD_DISSECTOR_LUA: string = [
${lines.join("\n")}
].join("\\n");
`;
await Deno.writeTextFile(new URL("fsd_dissector_lua.ts", dir), module);
