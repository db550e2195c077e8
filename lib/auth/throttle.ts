/**
 * Slowing down failed logins, per client address: a few failures are free,
 * then each further attempt waits longer (a growing delay), and after many
 * failures the address is paused: its logins are refused at once, without
 * being checked, until the pause ends. Other addresses are never slowed.
 *
 * Attempts from one address are spaced out even when they arrive together
 * (many connections at once): each one reserves the next slot. Memory is
 * bounded: at most `maxAddresses` addresses are tracked; quiet ones are
 * forgotten after `forgetMs`, and when the table is full the oldest entry
 * makes room.
 */

export interface ThrottleConfig {
  /** Failures in a row without any delay (default 3). */
  freeFailures: number;
  /** The first delay; each further failure doubles it (default 250 ms). */
  baseDelayMs: number;
  /** The longest delay (default 4 s). */
  maxDelayMs: number;
  /** Failures (counting attempts still being checked) that pause the address (default 10). */
  pauseAfter: number;
  /** How long a pause lasts (default 60 s); after it, each further failure pauses again. */
  pauseMs: number;
  /** An address with no attempt for this long is forgotten (default 15 minutes). */
  forgetMs: number;
  /** Most addresses tracked at once (default 10,000). */
  maxAddresses: number;
}

export const THROTTLE_DEFAULTS: ThrottleConfig = {
  freeFailures: 3,
  baseDelayMs: 250,
  maxDelayMs: 4000,
  pauseAfter: 10,
  pauseMs: 60_000,
  forgetMs: 15 * 60_000,
  maxAddresses: 10_000,
};

interface Entry {
  failures: number;
  /** Attempts admitted and not yet settled. */
  pending: number;
  /** When the next attempt may be checked. */
  nextAt: number;
  pausedUntil: number;
  lastSeen: number;
}

/** What an attempt must do: wait `waitMs` and then be checked, or be refused (paused). */
export type Admission = { waitMs: number } | { pausedMs: number };

export class LoginThrottle {
  readonly config: ThrottleConfig;
  #entries = new Map<string, Entry>();
  #now: () => number;

  constructor(config: Partial<ThrottleConfig> = {}, now: () => number = () => performance.now()) {
    this.config = { ...THROTTLE_DEFAULTS, ...config };
    this.#now = now;
  }

  /** Addresses tracked right now. */
  get size(): number {
    return this.#entries.size;
  }

  /**
   * Admits one login attempt from `address`. When it returns `waitMs`, the
   * caller waits that long, checks the login, and reports with `settle`.
   */
  admit(address: string): Admission {
    const now = this.#now();
    const entry = this.#entry(address, now);
    entry.lastSeen = now;
    if (entry.pausedUntil > now) return { pausedMs: entry.pausedUntil - now };
    const { pauseAfter } = this.config;
    if (entry.failures + entry.pending >= pauseAfter) {
      // Enough attempts in flight to pause the address if they all fail.
      return { pausedMs: Math.max(1, entry.nextAt - now) };
    }
    const start = Math.max(now, entry.nextAt);
    entry.pending++;
    entry.nextAt = start + this.delayAfter(entry.failures + entry.pending);
    return { waitMs: start - now };
  }

  /** Reports how an admitted attempt ended. A success forgets the address. */
  settle(address: string, ok: boolean): void {
    const entry = this.#entries.get(address);
    if (!entry) return;
    const now = this.#now();
    entry.pending = Math.max(0, entry.pending - 1);
    if (ok) {
      if (entry.pending === 0) this.#entries.delete(address);
      else entry.failures = 0;
      return;
    }
    entry.failures++;
    entry.nextAt = Math.max(entry.nextAt, now + this.delayAfter(entry.failures));
    if (entry.failures >= this.config.pauseAfter) {
      entry.pausedUntil = now + this.config.pauseMs;
      entry.failures = this.config.pauseAfter - 1;
      entry.nextAt = entry.pausedUntil;
    }
  }

  /** The delay before the attempt after `failures` failures. */
  delayAfter(failures: number): number {
    const { freeFailures, baseDelayMs, maxDelayMs } = this.config;
    if (failures <= freeFailures) return 0;
    return Math.min(maxDelayMs, baseDelayMs * 2 ** Math.min(30, failures - freeFailures - 1));
  }

  #entry(address: string, now: number): Entry {
    const found = this.#entries.get(address);
    if (found) return found;
    if (this.#entries.size >= this.config.maxAddresses) this.#makeRoom(now);
    const entry: Entry = { failures: 0, pending: 0, nextAt: 0, pausedUntil: 0, lastSeen: now };
    this.#entries.set(address, entry);
    return entry;
  }

  /** Forgets quiet addresses; if none is quiet, the one tracked longest. */
  #makeRoom(now: number): void {
    for (const [address, entry] of this.#entries) {
      const quiet = entry.pending === 0 && entry.pausedUntil <= now &&
        now - entry.lastSeen >= this.config.forgetMs;
      if (quiet) this.#entries.delete(address);
    }
    if (this.#entries.size >= this.config.maxAddresses) {
      this.#entries.delete(this.#entries.keys().next().value!);
    }
  }
}
