/**
 * Rates for datagram servers, where nothing else bounds what a sender can
 * make us do: a token bucket, and a bounded table of buckets per source.
 */

/** `rate` units a second, at most `burst` saved up; take() spends them or refuses. */
export class TokenBucket {
  #tokens: number;
  #at = performance.now();

  constructor(readonly rate: number, readonly burst: number) {
    this.#tokens = burst;
  }

  /** Spends `n` units if there are that many; false (nothing spent) otherwise. */
  take(n = 1, now = performance.now()): boolean {
    this.#tokens = Math.min(this.burst, this.#tokens + (now - this.#at) * this.rate / 1000);
    this.#at = now;
    if (this.#tokens < n) return false;
    this.#tokens -= n;
    return true;
  }
}

/**
 * One bucket per source (address and port), at most `max` sources: when
 * full, the source heard from least recently is forgotten, so a flood of
 * forged sources costs a bounded table and no one source more than its rate.
 */
export class PeerBudgets {
  readonly #buckets = new Map<string, TokenBucket>();

  constructor(readonly rate: number, readonly burst: number, readonly max = 4096) {}

  /** Whether `key` may have one more unit now. */
  take(key: string, n = 1): boolean {
    let bucket = this.#buckets.get(key);
    if (bucket) {
      this.#buckets.delete(key); // re-inserted last: the map's order is recency
    } else {
      if (this.#buckets.size >= this.max) this.#buckets.delete(this.#buckets.keys().next().value!);
      bucket = new TokenBucket(this.rate, this.burst);
    }
    this.#buckets.set(key, bucket);
    return bucket.take(n);
  }

  /** Whether `key` has a bucket (was heard from lately). */
  has(key: string): boolean {
    return this.#buckets.has(key);
  }

  get size(): number {
    return this.#buckets.size;
  }
}
