/**
 * `fsd serve --workers N`: N file servers in Deno workers (threads of one
 * process), each listening on the same port with SO_REUSEPORT so that the
 * kernel spreads connections over them, all serving one directory (the
 * staging locks make that safe). The parent keeps the connection limits for
 * the whole server (a LimitsCoordinator answers each worker's admissions),
 * prints every worker's log events, replaces a worker that dies, and stops
 * them all gracefully. With accounts, the parent checks every login
 * (lib/fsd/remote_login.ts): one throttle and one set of accounts.
 */

import { errorMessage } from "../bytes/mod.ts";
import { probeBoard } from "../net/accept_watchdog.ts";
import { ConnectionLimits } from "../net/limits.ts";
import {
  LimitsCoordinator,
  type LimitsReply,
  type LimitsRequest,
  RemoteLimits,
} from "../net/shared_limits.ts";
import type { AccountLine } from "../auth/accounts.ts";
import { Authenticator } from "../auth/authenticator.ts";
import type { ServerEvent } from "../store/log.ts";
import { answerLogin, type LoginReply, type LoginRequest, RemoteLogins } from "./remote_login.ts";
import { type AccountsConfig, FileServer, SERVER_DEFAULTS, type ServerConfig } from "./server.ts";

import { isServeWorker, SERVE_WORKER_NAME } from "./worker_name.ts";
import { after, type Timer } from "../timer.ts";

export { isServeWorker };

/** What a worker gets: the server's config, less what cannot cross a message channel. */
export type WorkerServerConfig = Omit<ServerConfig, "log" | "limits" | "accounts"> & {
  /** The login rules and the homes; the logins themselves are the parent's. */
  accounts?: Omit<AccountsConfig, "authenticator"> & { homes: string[] };
};

type ToWorker =
  | { type: "start"; config: WorkerServerConfig }
  | LimitsReply
  | LoginReply
  | { type: "shutdown"; graceMs: number }
  | { type: "close" };

type FromWorker =
  | { type: "listening"; hostname: string; port: number }
  | { type: "failed"; message: string }
  | { type: "log"; event: ServerEvent }
  | { type: "stopped" }
  | LimitsRequest
  | LoginRequest;

/** A worker that dies sooner than this after starting is replaced only after a pause. */
const SHORT_LIFE_MS = 1000;

export interface PoolConfig extends ServerConfig {
  workers: number;
  /** The module each worker runs; it must call `serveInWorker()` when named SERVE_WORKER_NAME. */
  workerModule: string | URL;
}

interface Slot {
  worker: Worker;
  started: number;
  /** Gone (died, failed or terminated): nothing to wait for. */
  dead?: boolean;
  /** Highest connection id this slot's workers logged: a replacement's ids go on after it. */
  lastId: number;
  stopped?: () => void;
}

export class ServerPool {
  readonly addr: { hostname: string; port: number };
  readonly workers: number;
  #config: PoolConfig;
  #coordinator: LimitsCoordinator;
  #slots: Slot[] = [];
  #log: (event: ServerEvent) => void;
  #stopping = false;
  #timers = new Set<Timer>();
  /** The workers' TLS listeners share one port, and their watchdogs this board. */
  readonly #probes: Int32Array;

  private constructor(config: PoolConfig, addr: { hostname: string; port: number }) {
    this.#config = config;
    this.addr = addr;
    this.workers = config.workers;
    this.#log = config.log ?? (() => {});
    this.#probes = probeBoard(config.workers);
    this.#coordinator = new LimitsCoordinator(
      new ConnectionLimits({
        maxClients: config.maxClients ?? SERVER_DEFAULTS.maxClients,
        maxPerIp: config.maxPerIp ?? SERVER_DEFAULTS.maxPerIp,
      }),
    );
  }

  /** Starts worker 1 (which binds the port, so a port 0 gets chosen), then the others on it. */
  static async start(config: PoolConfig): Promise<ServerPool> {
    await checkWorkersCanRun(config.workerModule);
    const pool = new ServerPool(config, { hostname: "", port: config.port });
    try {
      const first = await pool.#spawn(0, config.port);
      (pool as { addr: { hostname: string; port: number } }).addr = first;
      await Promise.all(
        Array.from({ length: config.workers - 1 }, (_, i) => pool.#spawn(i + 1, first.port)),
      );
    } catch (error) {
      await pool.close();
      throw error;
    }
    return pool;
  }

  /** Connections admitted across all workers. */
  get connections(): number {
    return this.#coordinator.limits.active;
  }

  /** Replaces the accounts (the file reread on SIGHUP): the parent checks every worker's logins. */
  async replaceAccounts(lines: AccountLine[]): Promise<void> {
    const authenticator = this.#config.accounts?.authenticator;
    if (authenticator instanceof Authenticator) await authenticator.replace(lines);
  }

  /** Every worker stops accepting and lets running transfers finish within `graceMs`. */
  async shutdown(graceMs: number): Promise<void> {
    // One line for the whole server: the workers' own shutdown events are not passed on.
    this.#log({ event: "shutdown", graceMs, connections: this.connections });
    await this.#stopAll({ type: "shutdown", graceMs });
  }

  /** Every worker closes its connections at once. */
  async close(): Promise<void> {
    await this.#stopAll({ type: "close" });
  }

  async #stopAll(message: ToWorker): Promise<void> {
    this.#stopping = true;
    for (const timer of this.#timers) timer.cancel();
    await Promise.all(
      this.#slots.filter((slot) => !slot.dead).map((slot) =>
        new Promise<void>((resolve) => {
          slot.stopped = resolve;
          slot.worker.postMessage(message);
        }).finally(() => ServerPool.#end(slot))
      ),
    );
  }

  static #end(slot: Slot): void {
    slot.dead = true;
    slot.worker.terminate();
  }

  /** Starts the worker of slot `index` on `port`; resolves once it listens. */
  #spawn(index: number, port: number): Promise<{ hostname: string; port: number }> {
    const { log: _log, limits: _limits, workers: _workers, workerModule, accounts, ...rest } =
      this.#config;
    const previous = this.#slots[index];
    const lastId = previous?.lastId ?? index + 1 - this.workers;
    const config: WorkerServerConfig = {
      ...rest,
      accounts: accounts && workerAccounts(accounts),
      port,
      reusePort: true,
      probes: { cells: this.#probes, slot: index },
      connectionIds: { first: lastId + this.workers, step: this.workers },
    };
    const worker = new Worker(workerModule, {
      type: "module",
      name: `${SERVE_WORKER_NAME} ${index + 1}`,
    });
    const slot: Slot = { worker, started: performance.now(), lastId };
    this.#slots[index] = slot;
    return new Promise((resolve, reject) => {
      let listening = false;
      worker.onmessage = (e: MessageEvent<FromWorker>) => {
        const message = e.data;
        if (message.type === "listening") {
          listening = true;
          this.#log({ event: "worker", worker: index + 1, state: "started" });
          resolve({ hostname: message.hostname, port: message.port });
        } else if (message.type === "failed") {
          ServerPool.#end(slot);
          if (listening) this.#died(index, slot, message.message);
          else reject(new Error(message.message));
        } else {
          this.#receive(index, slot, message);
        }
      };
      worker.onerror = (e: ErrorEvent) => {
        e.preventDefault(); // a worker's uncaught error must not end the parent
        ServerPool.#end(slot);
        if (listening) this.#died(index, slot, e.message);
        else reject(new Error(`worker ${index + 1} failed to start: ${e.message}`));
      };
      worker.postMessage({ type: "start", config } satisfies ToWorker);
    });
  }

  #receive(index: number, slot: Slot, message: FromWorker): void {
    switch (message.type) {
      case "log":
        if ("id" in message.event) slot.lastId = Math.max(slot.lastId, message.event.id);
        if (message.event.event !== "shutdown") this.#log(message.event);
        return;
      case "stopped":
        slot.stopped?.();
        return;
      case "admit":
      case "release": {
        const reply = this.#coordinator.handle(index, message);
        if (reply) slot.worker.postMessage(reply satisfies ToWorker);
        return;
      }
      case "login": {
        const authenticator = this.#config.accounts?.authenticator;
        if (!authenticator) return;
        answerLogin(authenticator, message).then((reply) => {
          if (!slot.dead) slot.worker.postMessage(reply satisfies ToWorker);
        });
        return;
      }
    }
  }

  /** The worker of `slot` is gone: its connections are released, and it is replaced. */
  #died(index: number, slot: Slot, message: string): void {
    if (this.#slots[index] !== slot) return;
    this.#coordinator.forget(index);
    if (this.#stopping) {
      slot.stopped?.();
      return;
    }
    this.#log({ event: "worker", worker: index + 1, state: "died", message });
    const pause = performance.now() - slot.started < SHORT_LIFE_MS ? SHORT_LIFE_MS : 0;
    const timer = after(pause, () => {
      this.#timers.delete(timer);
      if (this.#stopping) return;
      this.#spawn(index, this.addr.port).catch((error) =>
        this.#died(index, this.#slots[index], errorMessage(error))
      );
    });
    this.#timers.add(timer);
  }
}

/**
 * Workers need SO_REUSEPORT, which Deno gates behind --unstable-net (and
 * whose absence ends the process rather than throwing), and read access to
 * the code they load: checked up front, with errors that say so.
 */
async function checkWorkersCanRun(module: string | URL): Promise<void> {
  if (typeof (Deno as { listenDatagram?: unknown }).listenDatagram !== "function") {
    throw new Error("--workers needs the --unstable-net flag of deno run (for SO_REUSEPORT)");
  }
  const url = new URL(module);
  if (url.protocol !== "file:") return;
  const directory = new URL(".", url).pathname;
  const { state } = await Deno.permissions.query({ name: "read", path: directory });
  if (state !== "granted") {
    throw new Error(`--workers needs read access to fsd's own files: --allow-read=${directory}`);
  }
}

/** The accounts' rules for a worker: everything but the authenticator (the parent keeps it), and the homes. */
function workerAccounts(accounts: AccountsConfig): WorkerServerConfig["accounts"] {
  const { authenticator, ...rules } = accounts;
  return { ...rules, homes: authenticator.homes() };
}

/** The worker's side: runs one FileServer as the parent asks, and reports back. */
export function serveInWorker(): void {
  const scope = self as unknown as {
    postMessage(message: FromWorker): void;
    onmessage: ((e: MessageEvent<ToWorker>) => void) | null;
  };
  const post = (message: FromWorker) => scope.postMessage(message);
  const limits = new RemoteLimits(post);
  let server: FileServer | undefined;
  let logins: RemoteLogins | undefined;
  scope.onmessage = async (e: MessageEvent<ToWorker>) => {
    const message = e.data;
    switch (message.type) {
      case "start":
        try {
          const { accounts, ...config } = message.config;
          logins = accounts && new RemoteLogins(post, accounts.homes);
          server = await FileServer.start({
            ...config,
            accounts: accounts && logins && { ...accounts, authenticator: logins },
            limits,
            log: (event) => post({ type: "log", event }),
          });
          post({ type: "listening", hostname: server.addr.hostname, port: server.addr.port });
        } catch (error) {
          post({ type: "failed", message: errorMessage(error) });
        }
        return;
      case "admitted":
        limits.receive(message);
        return;
      case "logged-in":
        logins?.receive(message);
        return;
      case "shutdown":
      case "close":
        if (message.type === "shutdown") await server?.shutdown(message.graceMs);
        else await server?.close();
        post({ type: "stopped" });
        return;
    }
  };
}
