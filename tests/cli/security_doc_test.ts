/**
 * docs/SECURITY.md names the test that proves each defence (issue 18,
 * "Tests"): every test file it names exists, and every test name it quotes
 * after a file (`tests/x_test.ts`, "name" or ("name", "name")) is a test in
 * that file, so a renamed or deleted test cannot leave a claim unproved.
 */

import assert from "node:assert/strict";

const ROOT = new URL("../../", import.meta.url);
const squeeze = (text: string) => text.replace(/\s+/g, " ");

/** Each cited file with the test names quoted right after it. */
function citations(doc: string): { file: string; names: string[] }[] {
  const found: { file: string; names: string[] }[] = [];
  const cite = /`(tests\/[\w/.-]+\.ts)`/g;
  for (let match; (match = cite.exec(doc)) !== null;) {
    const names: string[] = [];
    const after = doc.slice(cite.lastIndex, cite.lastIndex + 2000);
    const quoted = /^[\s,:;(]*"([^"]+)"/;
    let rest = after;
    for (let q; (q = quoted.exec(rest)) !== null;) {
      names.push(squeeze(q[1]).replace(/^\.\.\. ?|\s?\.\.\.$/g, "").trim());
      rest = rest.slice(q[0].length);
    }
    found.push({ file: match[1], names });
  }
  return found;
}

Deno.test("security doc: every test file and test name docs/SECURITY.md cites exists", async () => {
  const doc = squeeze(await Deno.readTextFile(new URL("docs/SECURITY.md", ROOT)))
    // table cells: a cell border is not part of a name
    .replace(/ \| /g, " | ");
  const cited = citations(doc);
  assert.ok(cited.length >= 40, `only ${cited.length} citations found`);
  assert.ok(cited.filter((c) => c.names.length > 0).length >= 15);
  const missing: string[] = [];
  for (const { file, names } of cited) {
    const source = await Deno.readTextFile(new URL(file, ROOT)).catch(() => undefined);
    if (source === undefined) {
      missing.push(`${file}: no such file`);
      continue;
    }
    // a test's name may be split over source lines ("..." +\n "...")
    const text = squeeze(source.replace(/"\s*\+\s*"/g, ""));
    for (const name of names) {
      if (!text.includes(name)) missing.push(`${file}: no test "${name}"`);
    }
  }
  assert.deepEqual(missing, []);
});
