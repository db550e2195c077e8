/**
 * The HTTP face in a real browser: headless Chromium (Debian's chromium,
 * driven by puppeteer-core). The directory page lists, sorts and filters;
 * a download link downloads the right bytes; two files chosen in the form
 * upload, one refused for an existing name; a name made of markup shows as
 * text; the login form logs in; the live page shows a running fsd get with
 * its progress and draws its ladder. Screenshots go to docs/images/ with
 * FSD_SCREENSHOTS=1 (how the README's were made):
 *   FSD_SCREENSHOTS=1 deno test --allow-all tests/http/http_browser_test.ts
 */

import assert from "node:assert/strict";
import puppeteer, { type Browser } from "puppeteer-core";
import { hashPassword } from "../../lib/auth/password.ts";
import { randomBytes, tempDir } from "../support/files.ts";
import { assertTools, needs } from "../support/tools.ts";
import { serveHttp, serveLive } from "../support/http.ts";

/** In the page: a row shows the fsd get of lab.iso running, its bar part-way. */
const RUNNING_DOWNLOAD_SHOWN = `(() => {
  const row = document.querySelector("#connections tbody tr");
  const bar = row && row.querySelector("progress");
  return Boolean(row && row.textContent.includes("RRQ lab.iso") && row.textContent.includes("transferring") &&
    bar && bar.value > 0 && bar.value < bar.max);
})()`;

/** In the page: the ladder has the request and the first data packet. */
const LADDER_DRAWN =
  `/---- RRQ "lab.iso"[\\s\\S]*<---- DAT 1 \\(/.test(document.getElementById("ladder").textContent)`;

/**
 * Where screenshots go: docs/images/ (the README's) with FSD_SCREENSHOTS=1,
 * else a temporary directory, so that a test run leaves the tree as it was.
 */
const IMAGES = Deno.env.get("FSD_SCREENSHOTS") === "1"
  ? new URL("../../docs/images/", import.meta.url).pathname
  : await Deno.makeTempDir({ prefix: "fsd-screenshots-" }) + "/";
const EVIL = "<img src=x onerror=alert(1)>.txt";

async function withBrowser(fn: (browser: Browser) => Promise<void>): Promise<void> {
  await using profile = await tempDir();
  const browser = await puppeteer.launch({
    executablePath: "/usr/bin/chromium",
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      `--user-data-dir=${profile.path}`,
    ],
  });
  try {
    await fn(browser);
  } finally {
    await browser.close();
  }
}

Deno.test({
  name: "browser: the directory page sorts, filters, downloads, uploads two files, escapes names",
  ...needs("chromium"),
  sanitizeOps: false, // puppeteer's own timers and sockets outlive a page
  sanitizeResources: false,
  fn: async () => {
    assertTools("chromium");
    await using served = await tempDir();
    await using local = await tempDir();
    const big = randomBytes(150_000, 11);
    await Deno.writeTextFile(`${served.path}/a.txt`, "a\n");
    await Deno.writeFile(`${served.path}/b.bin`, big);
    await Deno.writeTextFile(`${served.path}/${EVIL}`, "x\n");
    await Deno.mkdir(`${served.path}/sub`);
    await Deno.writeTextFile(`${local.path}/a.txt`, "another a\n");
    await Deno.writeTextFile(`${local.path}/new.txt`, "new\n");
    await using server = await serveHttp(served.path);
    const base = `http://127.0.0.1:${server.port}`;
    await withBrowser(async (browser) => {
      const page = await browser.newPage();
      let dialogs = 0;
      page.on("dialog", async (dialog) => {
        dialogs++;
        await dialog.dismiss();
      });
      await page.setViewport({ width: 1000, height: 700 });
      await page.goto(`${base}/`);
      const names = () =>
        page.$$eval(
          "#listing tbody tr[data-name]:not([hidden]) td:first-child a",
          (links) => links.map((a) => a.textContent),
        );
      assert.deepEqual(await names(), [EVIL, "a.txt", "b.bin", "sub/"]);
      assert.equal(dialogs, 0); // the markup in the name did not run
      await page.screenshot({ path: `${IMAGES}http-directory.png` });
      // Sorting by size (a link: no script needed), largest first on the second click.
      await Promise.all([page.waitForNavigation(), page.click("th:nth-child(2) a")]);
      await Promise.all([page.waitForNavigation(), page.click("th:nth-child(2) a")]);
      assert.deepEqual((await names()).slice(0, 2), ["b.bin", "a.txt"]);
      // The filter box hides what does not match as you type.
      await page.type("#filter", "b.");
      assert.deepEqual(await names(), ["b.bin"]);
      // A download link downloads the right bytes.
      const cdp = await page.createCDPSession();
      await cdp.send("Browser.setDownloadBehavior", {
        behavior: "allow",
        downloadPath: local.path,
        eventsEnabled: true,
      });
      const finished = new Promise<void>((resolve) =>
        cdp.on("Browser.downloadProgress", (e: { state: string }) => {
          if (e.state === "completed") resolve();
        })
      );
      await page.click('a[href="b.bin"]');
      await finished;
      assert.deepEqual(await Deno.readFile(`${local.path}/b.bin`), big);
      // Two files chosen in the form: one made, one refused for its existing name, without a reload.
      await page.goto(`${base}/`);
      const input = await page.$("#files");
      await input!.uploadFile(`${local.path}/new.txt`, `${local.path}/a.txt`);
      await page.click("#upload button[type=submit]");
      await page.waitForFunction('document.querySelectorAll("#results li").length === 2');
      const results = await page.$$eval(
        "#results li",
        (items) => items.map((li) => [li.className, li.textContent]),
      );
      assert.deepEqual(results, [
        ["ok", "new.txt: created, 4 bytes"],
        ["refused", "a.txt: file already exists: a.txt"],
      ]);
      assert.equal(await Deno.readTextFile(`${served.path}/new.txt`), "new\n");
      assert.equal(await Deno.readTextFile(`${served.path}/a.txt`), "a\n");
    });
  },
});

Deno.test({
  name: "browser: the login form logs in, and the page says as whom",
  ...needs("chromium"),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    assertTools("chromium");
    await using dir = await tempDir();
    const root = `${dir.path}/root`;
    await Deno.mkdir(root);
    await Deno.writeTextFile(`${root}/secret.txt`, "s\n");
    const users = `${dir.path}/users`;
    await Deno.writeTextFile(
      users,
      `alice:${await hashPassword("wonderland", { ln: 10, r: 8, p: 1 })}:rw\n`,
    );
    await using server = await serveHttp(root, ["--users", users], [users]);
    await withBrowser(async (browser) => {
      const page = await browser.newPage();
      const first = await page.goto(`http://127.0.0.1:${server.port}/`);
      assert.equal(first!.status(), 401);
      await page.type("#user", "alice");
      await page.type("#password", "wonderland");
      await Promise.all([page.waitForNavigation(), page.click("#login button[type=submit]")]);
      const header = await page.$eval("header", (h) => h.textContent ?? "");
      assert.match(header, /Signed in as alice/);
      assert.ok((await page.content()).includes("secret.txt"));
    });
  },
});

Deno.test({
  name: "browser: the live page shows a running fsd get with its progress and draws its ladder",
  ...needs("chromium"),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    assertTools("chromium");
    await using served = await tempDir();
    await Deno.writeFile(`${served.path}/lab.iso`, randomBytes(40_000_000, 12));
    const { server, fsdPort, httpPort } = await serveLive(served.path);
    await using _server = server;
    await withBrowser(async (browser) => {
      const page = await browser.newPage();
      await page.setViewport({ width: 1200, height: 800 });
      await page.goto(`http://127.0.0.1:${httpPort}/.live/`);
      // fsd get to stdout, which nobody reads yet: the transfer stalls part-way, running.
      const get = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--quiet",
          `--allow-net=127.0.0.1:${fsdPort}`,
          new URL("../../main.ts", import.meta.url).pathname,
          "get",
          "127.0.0.1",
          String(fsdPort),
          "lab.iso",
          "-",
        ],
        stdout: "piped",
        stderr: "null",
      }).spawn();
      try {
        await page.waitForFunction(RUNNING_DOWNLOAD_SHOWN, { timeout: 20_000 });
        await page.waitForFunction(LADDER_DRAWN, { timeout: 20_000 });
        await page.screenshot({ path: `${IMAGES}http-live.png` });
      } finally {
        let total = 0;
        for await (const chunk of get.stdout) total += chunk.length;
        assert.equal(total, 40_000_000);
        assert.ok((await get.status).success);
      }
    });
  },
});
