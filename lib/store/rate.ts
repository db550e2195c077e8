/**
 * A token bucket per client address, for what a client may do only so often
 * (making directories: the listing bomb of issue 18). The table is bounded:
 * past `maxClients` addresses, the one unseen longest is forgotten.
 */

export interface RateConfig {
  /** Actions a client may take at once. */
  burst: number;
  /** Actions per second it earns back. */
  perSecond: number;
  /** Addresses remembered at most. */
  maxClients: number;
}

/** New directories: 64 at once, then 8 a second, per address. */
export const MKDIR_RATE: RateConfig = { burst: 64, perSecond: 8, maxClients: 4096 };

export class ClientRate {
  readonly config: RateConfig;
  #buckets = new Map<string, { tokens: number; at: number }>();

  constructor(config: RateConfig = MKDIR_RATE) {
    this.config = config;
  }

  /** Takes one action for `client`: undefined if allowed, else the milliseconds until it would be. */
  take(client: string, now = performance.now()): number | undefined {
    const { burst, perSecond, maxClients } = this.config;
    const bucket = this.#buckets.get(client) ?? { tokens: burst, at: now };
    this.#buckets.delete(client); // re-inserted last: the map's order is the least recently seen first
    bucket.tokens = Math.min(burst, bucket.tokens + (now - bucket.at) * perSecond / 1000);
    bucket.at = now;
    if (this.#buckets.size >= maxClients) {
      this.#buckets.delete(this.#buckets.keys().next().value!);
    }
    this.#buckets.set(client, bucket);
    if (bucket.tokens < 1) return Math.ceil((1 - bucket.tokens) * 1000 / perSecond);
    bucket.tokens -= 1;
    return undefined;
  }
}
