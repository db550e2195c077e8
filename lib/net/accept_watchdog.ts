/**
 * Notices a node:net listener that has stopped accepting. Deno 2.9.6's node:net server stops
 * accepting for good after one accept fails (EMFILE: out of descriptors) and emits no error to
 * re-arm on, while the kernel goes on queueing connections. So, while no connection has arrived
 * for a second, the watchdog connects to the listener itself over loopback (a probe the listener
 * recognises by its port and closes at once, unlogged and uncounted); a probe not accepted within
 * `deadlineMs` means the listener is stuck, and `rearm` is called (the owner listens again on the
 * same port), as nginx pauses and retries after a failed accept. A probe that cannot even be
 * opened (still out of descriptors) is tried again a second later.
 *
 * A port shared by several listeners of this process (SO_REUSEPORT, `--workers`) cannot be
 * probed: the probe may reach another one. There (`shared`), each watchdog instead opens and
 * closes a loopback listener on port 0 every second to learn whether the process is out of
 * descriptors, and tells the others on a BroadcastChannel when it is (the descriptor table is the
 * process's, so every listener's accept may have failed); once descriptors can be had again,
 * every listener of the port listens again, stuck or not.
 *
 * It needs net permission to the listener's own address (queried, never prompted): without it,
 * there is no watchdog.
 */

import { closeQuietly } from "../bytes/source_sink.ts";

export interface WatchdogConfig {
  /** Where the listener listens. */
  hostname: string;
  port: number;
  /** The port is shared with other listeners of this process (SO_REUSEPORT): no probe. */
  shared?: boolean;
  /** How often to look (default 1 s) and how long a probe may wait to be accepted (default 2 s). */
  intervalMs?: number;
  deadlineMs?: number;
  /** The listener is stuck: listen again. */
  rearm(): Promise<void>;
  /** Said once per episode: out of descriptors, or listening again. */
  onTrouble(message: string): void;
}

export class AcceptWatchdog {
  #config: WatchdogConfig;
  #timer: ReturnType<typeof setInterval>;
  #sawConnection = false;
  #probe: { conn: Deno.TcpConn; port: number; since: number } | undefined;
  /** A probe's connect in flight: the listener may see the connection before it resolves. */
  #connecting: Promise<void> | undefined;
  #outOfDescriptors = false;
  #rearming = false;
  #stopped = false;
  /** Shared port: this process ran out of descriptors since the last re-listen (said by any listener). */
  #exhausted = false;
  #channel: BroadcastChannel | undefined;

  private constructor(config: WatchdogConfig) {
    this.#config = config;
    if (config.shared) {
      this.#channel = new BroadcastChannel(`fsd accept watchdog ${config.port}`);
      this.#channel.onmessage = () => this.#exhausted = true;
    }
    this.#timer = setInterval(() => void this.#tick(), config.intervalMs ?? 1000);
    Deno.unrefTimer(this.#timer);
  }

  /** A watchdog for the listener at `config`'s address, or undefined where it cannot probe. */
  static start(config: WatchdogConfig): AcceptWatchdog | undefined {
    const host = config.shared
      ? probeHost(config.hostname) // any port: the descriptor check listens on port 0
      : `${probeHost(config.hostname)}:${config.port}`;
    if (Deno.permissions.querySync({ name: "net", host }).state !== "granted") return undefined;
    return new AcceptWatchdog(config);
  }

  /**
   * Call on every accepted connection; true when it is the watchdog's own probe, which the
   * caller then closes and forgets.
   */
  async accepted(remote: { address?: string; port?: number }): Promise<boolean> {
    this.#sawConnection = true;
    if (!isLoopback(remote.address ?? "")) return false;
    await this.#connecting;
    const probe = this.#probe;
    if (!probe || remote.port !== probe.port) return false;
    this.#endProbe();
    return true;
  }

  stop(): void {
    this.#stopped = true;
    clearInterval(this.#timer);
    this.#channel?.close();
    this.#endProbe();
  }

  async #tick(): Promise<void> {
    if (this.#rearming || this.#connecting) return;
    if (this.#config.shared) return await this.#checkShared();
    const probe = this.#probe;
    if (probe) {
      if (Date.now() - probe.since < (this.#config.deadlineMs ?? 2000)) return;
      this.#endProbe();
      return await this.#listenAgain();
    }
    if (this.#sawConnection) {
      this.#sawConnection = false;
      return;
    }
    this.#connecting = this.#connect();
    await this.#connecting;
    this.#connecting = undefined;
  }

  /** A shared port: out of descriptors now (said once, told to the others), or back from it (re-listen). */
  async #checkShared(): Promise<void> {
    try {
      Deno.listen({ hostname: probeHost(this.#config.hostname), port: 0 }).close();
    } catch (error) {
      if (!/too many open files|os error 24/i.test(String(error))) return;
      this.#exhausted = true;
      if (!this.#outOfDescriptors) {
        this.#outOfDescriptors = true;
        this.#config.onTrouble("out of descriptors: waiting for some to be freed");
        this.#channel?.postMessage("exhausted");
      }
      return;
    }
    this.#outOfDescriptors = false;
    if (!this.#exhausted || this.#stopped) return;
    this.#exhausted = false;
    await this.#listenAgain();
  }

  async #listenAgain(): Promise<void> {
    this.#config.onTrouble(
      "the TLS port stopped accepting (out of descriptors?); listening again",
    );
    this.#rearming = true;
    try {
      await this.#config.rearm();
    } finally {
      this.#rearming = false;
    }
  }

  async #connect(): Promise<void> {
    try {
      const conn = await Deno.connect({
        hostname: probeHost(this.#config.hostname),
        port: this.#config.port,
      });
      this.#outOfDescriptors = false;
      if (this.#stopped) return conn.close();
      this.#probe = { conn, port: conn.localAddr.port, since: Date.now() };
    } catch (error) {
      // Nobody listens (listening again failed): try again.
      if (error instanceof Deno.errors.ConnectionRefused) return await this.#config.rearm();
      if (!this.#outOfDescriptors && /too many open files|os error 24/i.test(String(error))) {
        this.#outOfDescriptors = true;
        this.#config.onTrouble("out of descriptors: waiting for some to be freed");
      }
    }
  }

  #endProbe(): void {
    closeQuietly(this.#probe?.conn);
    this.#probe = undefined;
  }
}

/** The address a probe connects to: loopback for a wildcard listener. */
function probeHost(hostname: string): string {
  if (hostname === "0.0.0.0" || hostname === "") return "127.0.0.1";
  if (hostname === "::" || hostname === "[::]") return "::1";
  return hostname.replace(/^\[|\]$/g, "");
}

function isLoopback(address: string): boolean {
  return /^(::ffff:)?127\./.test(address) || address === "::1";
}
