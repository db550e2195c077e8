/** Connecting out, with a time limit on the connect itself. */

import { after } from "../timer.ts";

export interface ConnectConfig {
  hostname: string;
  port: number;
  /** Give up after this long; 0 waits as long as the system does. */
  timeoutMs: number;
}

/** Connects over TCP; a connect that takes longer than `timeoutMs` fails with TimedOut. */
export async function connectWithTimeout(config: ConnectConfig): Promise<Deno.TcpConn> {
  const { hostname, port, timeoutMs } = config;
  const abort = new AbortController();
  const timer = timeoutMs > 0 ? after(timeoutMs, () => abort.abort()) : undefined;
  try {
    return await Deno.connect({ hostname, port, signal: abort.signal });
  } catch (error) {
    if (abort.signal.aborted) {
      throw new Deno.errors.TimedOut(`timed out connecting to ${hostname} port ${port}`);
    }
    throw error;
  } finally {
    timer?.cancel();
  }
}
