/**
 * docs/SECURITY.md names the test that proves each defence (issue 18): every
 * `tests/....ts` it names exists, and every test name it quotes after one
 * ("...", or several: "..." and "...") is in that file; a test named alone,
 * in a table's test column or as (test: `...`), is in some file under tests/.
 * A renamed or removed test fails here, not silently in the document.
 */

import assert from "node:assert/strict";

const REPO = new URL("../../", import.meta.url).pathname;
const SECURITY = `${REPO}docs/SECURITY.md`;

/** Text with every run of white space (line breaks in a paragraph or a name) as one space. */
const flat = (text: string) => text.replace(/\s+/g, " ");

/** A quoted name's words, with `${...}` in the test file standing for any text. */
function named(source: string, name: string): boolean {
  if (source.includes(name.replace(/ ?\.\.\.$/, ""))) return true; // "the start of a name ..."
  // Names made in a loop (`... (--workers ${workers})`): the file's template, filled in.
  const templates = source.match(/`[^`]*\$\{[^`]*`/g) ?? [];
  return templates.some((template) => {
    const parts = template.slice(1, -1).split(/\$\{[^}]*\}/);
    const pattern = parts.map((part) => part.replace(/[.*+?^$()|[\]\\{}]/g, "\\$&")).join(".+?");
    return new RegExp(pattern).test(name);
  });
}

Deno.test("security doc: every test SECURITY.md names exists, with every test name it quotes", async () => {
  const doc = flat(await Deno.readTextFile(SECURITY));
  // `tests/x_test.ts`, "name" / : "name" / ("name", "name") / "name" and "name"
  const cited = [
    ...doc.matchAll(/`(tests\/[\w/.-]+\.ts)`((?:[,:]? \(?(?:and |or )?"[^"]+")*)/g),
  ];
  assert.ok(cited.length >= 40, `only ${cited.length} tests named`);
  const missing: string[] = [];
  let names = 0;
  for (const [, file, quoted] of cited) {
    const source = await Deno.readTextFile(`${REPO}${file}`).then(flat, () => undefined);
    if (source === undefined) {
      missing.push(`${file}: no such file`);
      continue;
    }
    for (const [, name] of quoted.matchAll(/"([^"]+)"/g)) {
      names++;
      if (!named(source, name)) missing.push(`${file}: no test "${name}"`);
    }
  }
  assert.deepEqual(missing, []);
  assert.ok(names >= 30, `only ${names} test names quoted`);
});

Deno.test("security doc: every test named without its file (a table's test column, or test: `...`) exists", async () => {
  const doc = flat(await Deno.readTextFile(SECURITY));
  const names = new Set([
    ...[...doc.matchAll(/\(test: `([^`]+)`\)/g)].map((m) => m[1]),
    ...[...doc.matchAll(/(?:\| |, )`((?:udp|tftp|attack|http|tls|echo)[a-z /-]*: [^`]{20,})`/g)]
      .map((m) => m[1]),
  ]);
  assert.ok(names.size >= 10, `only ${names.size} names found`);
  const sources: string[] = [];
  const walk = async (dir: string) => {
    for await (const entry of Deno.readDir(dir)) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory) await walk(path);
      else if (entry.name.endsWith(".ts")) sources.push(flat(await Deno.readTextFile(path)));
    }
  };
  await walk(`${REPO}tests`);
  const missing = [...names].filter((name) => !sources.some((source) => source.includes(name)));
  assert.deepEqual(missing, []);
});
