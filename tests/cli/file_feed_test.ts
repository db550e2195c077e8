/**
 * get -r's lanes move files while the tree is still being listed
 * (commands/client/jobs.ts, FileFeed): the extra lanes take each file as
 * it is fed, the first lane (busy listing) only once the listing is done,
 * and the reports still go out in the order things were found.
 */

import assert from "node:assert/strict";
import { FileFeed, runFiles } from "../../commands/client/jobs.ts";
import { type FileReport, Reporter } from "../../commands/client/report.ts";

interface File {
  remote: string;
  local: string;
  size: number;
}

const file = (name: string): File => ({ remote: name, local: `/nowhere/${name}`, size: 1 });

const moved = (f: File): FileReport => ({
  name: f.remote,
  local: f.local,
  kind: "file",
  bytes: 1,
  seconds: 0,
  outcome: "ok",
});

Deno.test("get -r: a lane moves a listed file before the listing ends; reports keep the found order", async () => {
  const feed = new FileFeed<File>();
  const reporter = new Reporter(false, "quiet");
  const started: string[] = [];
  const { promise: movedOne, resolve: firstMoved } = Promise.withResolvers<void>();
  const { promise: listing, resolve: listingDone } = Promise.withResolvers<void>();
  const running = runFiles(
    reporter,
    "receiving",
    feed,
    ["first", "extra"],
    (f, _progress, lane) => {
      started.push(`${f.remote} on ${lane}`);
      firstMoved();
      return Promise.resolve(moved(f));
    },
    { firstLaneAfter: listing },
  );

  feed.report({ ...moved(file("dir")), kind: "directory", bytes: 0 });
  feed.add(file("dir/a"));
  await movedOne; // the listing has not ended: the feed is still open
  assert.equal(feed.ended, false);
  assert.deepEqual(started, ["dir/a on extra"], "the extra lane, while the first one lists");

  feed.report({ ...moved(file("dir/sub")), kind: "directory", bytes: 0 });
  feed.add(file("dir/sub/b"));
  feed.add(file("dir/sub/c"));
  feed.end();
  listingDone();
  await running;
  assert.deepEqual(
    reporter.reports.map((r) => `${r.kind} ${r.name}`),
    ["directory dir", "file dir/a", "directory dir/sub", "file dir/sub/b", "file dir/sub/c"],
  );
  assert.equal(started.length, 3);
});

Deno.test("get -r: the first lane starts only after the listing, even with files waiting", async () => {
  const feed = new FileFeed<File>();
  const reporter = new Reporter(false, "quiet");
  const lanesUsed: string[] = [];
  const { promise: listing, resolve: listingDone } = Promise.withResolvers<void>();
  for (const name of ["a", "b", "c"]) feed.add(file(name));
  const running = runFiles(reporter, "receiving", feed, ["first"], (f, _progress, lane) => {
    lanesUsed.push(lane);
    return Promise.resolve(moved(f));
  }, { firstLaneAfter: listing });
  // Let every pending job run: nothing may move on the only lane while it lists.
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.deepEqual(lanesUsed, []);
  feed.end();
  listingDone();
  await running;
  assert.deepEqual(lanesUsed, ["first", "first", "first"]);
  assert.deepEqual(reporter.reports.map((r) => r.name), ["a", "b", "c"]);
});
