/**
 * The live page, `/.live/`: what every protocol is doing right now, for an
 * instructor's projector. The page (large type, no clutter) updates itself
 * from Server-Sent Events; choosing an fsd/1 session draws its packets as a
 * ladder and offers them as a pcap and as text. The data comes from a
 * `LiveView` (lib/capture/live.ts keeps it); only loopback clients and
 * accounts with the admin right may look.
 */

import { isLoopback } from "../net/ip.ts";
import { escapeHtml } from "./page.ts";
import { HttpError, SECURITY_HEADERS } from "./respond.ts";
import { every } from "../timer.ts";

/** One connection (fsd/1, HTTP) or transfer (TFTP) as the page shows it. */
export interface LiveConnection {
  /** Unique across protocols, e.g. "fsd-3". */
  key: string;
  protocol: "fsd/1" | "TFTP" | "HTTP";
  address: string;
  user?: string;
  state: string;
  op?: string;
  name?: string;
  bytes: number;
  size?: number;
  /** Bytes per second over the last moments. */
  rate: number;
  /** A ladder (and pcap) is kept for it. */
  ladder: boolean;
}

/** What the live page reads. */
export interface LiveView {
  connections(): LiveConnection[];
  /** Calls `listener` when something changed (at most a few times a second); returns the way to stop. */
  subscribe(listener: () => void): () => void;
  /** The ladder of session `key`, as lines. */
  ladder(key: string): string[] | undefined;
  /** Session `key` as a capture file (the framing of --pcap). */
  pcap(key: string): Uint8Array<ArrayBuffer> | undefined;
}

/** What the HTTP face tells the live view about its own requests. */
export interface HttpActivity {
  begin(
    id: number,
    info: { address: string; op: string; name: string; user?: string; size?: number },
  ): void;
  progress(id: number, bytes: number): void;
}

/** Most live pages open at once (each holds an event stream). */
const MAX_WATCHERS = 16;

export class LivePage {
  #view: LiveView;
  #watchers = 0;

  constructor(view: LiveView) {
    this.#view = view;
  }

  /**
   * Answers a request under /.live/ (`path` without the prefix) from
   * `address`; `admin`: the caller logged in with the admin right.
   */
  answer(path: string, address: string, signal: AbortSignal, admin = false): Response {
    if (!isLoopback(address) && !admin) {
      throw new HttpError(403, "the live page is for loopback clients and admin accounts only");
    }
    if (path === "") return page();
    if (path === "app.js") {
      return new Response(LIVE_JS, {
        headers: { ...SECURITY_HEADERS, "content-type": "text/javascript; charset=utf-8" },
      });
    }
    if (path === "events") return this.#events(signal);
    const session = /^session\/([a-z]+-\d+)\.(txt|pcap)$/.exec(path);
    if (session) {
      const [, key, kind] = session;
      const headers = {
        ...SECURITY_HEADERS,
        "content-disposition": `attachment; filename="fsd-${key}.${kind}"`,
      };
      if (kind === "txt") {
        const lines = this.#view.ladder(key);
        if (!lines) throw new HttpError(404, `no such session: ${key}`);
        return new Response(lines.join("\n") + "\n", {
          headers: { ...headers, "content-type": "text/plain; charset=utf-8" },
        });
      }
      const bytes = this.#view.pcap(key);
      if (!bytes) throw new HttpError(404, `no such session: ${key}`);
      return new Response(bytes, {
        headers: { ...headers, "content-type": "application/vnd.tcpdump.pcap" },
      });
    }
    throw new HttpError(404, `not found: /.live/${path}`);
  }

  /** Server-Sent Events: the connections (and the chosen ladder is fetched by the page). */
  #events(signal: AbortSignal): Response {
    if (this.#watchers >= MAX_WATCHERS) {
      throw new HttpError(503, `too many live pages open: at most ${MAX_WATCHERS}`);
    }
    this.#watchers++;
    const encoder = new TextEncoder();
    let stop = () => {};
    const body = new ReadableStream<Uint8Array>({
      start: (controller) => {
        const send = () => {
          const data = JSON.stringify({
            connections: this.#view.connections(),
            ladders: Object.fromEntries(
              this.#view.connections().filter((c) => c.ladder).map((c) => [
                c.key,
                (this.#view.ladder(c.key) ?? []).slice(-200),
              ]),
            ),
          });
          try {
            controller.enqueue(encoder.encode(`data: ${data}\n\n`));
          } catch {
            stop();
          }
        };
        const unsubscribe = this.#view.subscribe(send);
        // A comment every 15 s keeps proxies from closing a quiet stream.
        const ping = every(15_000, () => {
          try {
            controller.enqueue(encoder.encode(": ping\n\n"));
          } catch {
            stop();
          }
        });
        let stopped = false;
        stop = () => {
          if (stopped) return;
          stopped = true;
          this.#watchers--;
          unsubscribe();
          ping.cancel();
          try {
            controller.close();
          } catch {
            // already closed
          }
        };
        signal.addEventListener("abort", stop, { once: true });
        send();
      },
      cancel: () => stop(),
    });
    return new Response(body, {
      headers: {
        ...SECURITY_HEADERS,
        "content-type": "text/event-stream",
        "cache-control": "no-store",
      },
    });
  }
}

function page(): Response {
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>fsd live</title>
<link rel="stylesheet" href="/.fsd/app.css">
<script src="/.live/app.js" defer></script>
</head>
<body class="live"><main>
<h1>${escapeHtml("fsd live: connections")}</h1>
<table id="connections"><caption>Updated as it happens</caption>
<thead><tr><th scope="col">Protocol</th><th scope="col">Client</th><th scope="col">State</th><th scope="col">File</th><th scope="col">Progress</th><th scope="col">Rate</th></tr></thead>
<tbody></tbody></table>
<section aria-labelledby="ladder-title">
<h2 id="ladder-title">Packets of <span id="chosen">the newest fsd/1 session</span></h2>
<p><a id="save-pcap" href="#">Save as pcap</a> · <a id="save-text" href="#">Save as text</a></p>
<pre id="ladder" aria-live="off"></pre>
</section>
</main></body></html>
`;
  return new Response(html, {
    headers: {
      ...SECURITY_HEADERS,
      "content-type": "text/html; charset=utf-8",
      "cache-control": "no-store",
    },
  });
}

const LIVE_JS = `"use strict";
(() => {
  const body = document.querySelector("#connections tbody");
  const ladder = document.getElementById("ladder");
  const chosenLabel = document.getElementById("chosen");
  let chosen = null;
  const human = (n) => n >= 1048576 ? (n / 1048576).toFixed(1) + " MiB" : n >= 1024 ? (n / 1024).toFixed(1) + " KiB" : n + " B";
  const cell = (text) => { const td = document.createElement("td"); td.textContent = text; return td; };
  const events = new EventSource("/.live/events");
  events.onmessage = (message) => {
    const state = JSON.parse(message.data);
    body.replaceChildren(...state.connections.map((c) => {
      const row = document.createElement("tr");
      row.dataset.key = c.key;
      row.append(cell(c.protocol), cell(c.address + (c.user ? " (" + c.user + ")" : "")), cell(c.state),
        cell(c.op ? c.op + " " + (c.name ?? "") : ""));
      const bar = document.createElement("td");
      const progress = document.createElement("progress");
      if (c.size) { progress.max = c.size; progress.value = c.bytes; }
      progress.setAttribute("aria-label", "progress of " + (c.name ?? c.key));
      bar.append(progress, " " + human(c.bytes) + (c.size ? " of " + human(c.size) : ""));
      row.append(bar, cell(human(Math.round(c.rate)) + "/s"));
      if (c.ladder) {
        row.tabIndex = 0;
        row.className = "choosable";
        const choose = () => { chosen = c.key; draw(state); };
        row.addEventListener("click", choose);
        row.addEventListener("keydown", (e) => { if (e.key === "Enter") choose(); });
      }
      return row;
    }));
    draw(state);
  };
  const draw = (state) => {
    const keys = Object.keys(state.ladders);
    const key = chosen && state.ladders[chosen] ? chosen : keys[keys.length - 1];
    if (!key) return;
    chosenLabel.textContent = "session " + key;
    ladder.textContent = state.ladders[key].join("\\n");
    document.getElementById("save-pcap").href = "/.live/session/" + key + ".pcap";
    document.getElementById("save-text").href = "/.live/session/" + key + ".txt";
  };
})();
`;
