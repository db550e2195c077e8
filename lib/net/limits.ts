/**
 * Connection limits of one server: how many connections at once, and how
 * many from one address. A connection is admitted once and released once.
 */

export interface LimitsConfig {
  /** Most connections at once; 0: no limit. */
  maxClients: number;
  /** Most connections from one address at once; 0: no limit. */
  maxPerIp: number;
}

export class ConnectionLimits {
  readonly config: LimitsConfig;
  #total = 0;
  #perAddress = new Map<string, number>();

  constructor(config: LimitsConfig) {
    this.config = config;
  }

  /** Connections admitted and not yet released. */
  get active(): number {
    return this.#total;
  }

  /** Admits a connection from `address`, or says why not (nothing is counted then). */
  admit(address: string): { admitted: true } | { admitted: false; reason: string } {
    const { maxClients, maxPerIp } = this.config;
    const fromAddress = this.#perAddress.get(address) ?? 0;
    if (maxClients > 0 && this.#total >= maxClients) {
      return {
        admitted: false,
        reason: `server busy: serving ${maxClients} connections, its limit`,
      };
    }
    if (maxPerIp > 0 && fromAddress >= maxPerIp) {
      return {
        admitted: false,
        reason: `too many connections from ${address}: at most ${maxPerIp}`,
      };
    }
    this.#total++;
    this.#perAddress.set(address, fromAddress + 1);
    return { admitted: true };
  }

  /** Gives back what `admit(address)` took. */
  release(address: string): void {
    this.#total--;
    const left = (this.#perAddress.get(address) ?? 1) - 1;
    if (left > 0) this.#perAddress.set(address, left);
    else this.#perAddress.delete(address);
  }
}
