/**
 * The floor programs' wire helpers (bench/tree_floor.ts's server,
 * bench/floor_client.ts): whole reads and writes on a Deno.Conn. Imports
 * nothing, so that the floor client starts as a bare Deno program does.
 */

export async function readFull(conn: Deno.Conn, into: Uint8Array): Promise<boolean> {
  for (let at = 0; at < into.length;) {
    const n = await conn.read(into.subarray(at));
    if (n === null) return false;
    at += n;
  }
  return true;
}

export async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
}
/** Reads from `conn` through one buffer: several small requests cost one read. */
export class Buffered {
  #buffer = new Uint8Array(64 * 1024);
  #start = 0;
  #end = 0;
  constructor(readonly conn: Deno.Conn) {}
  /** Fills `into` whole; false at the end of the stream. */
  async readFull(into: Uint8Array): Promise<boolean> {
    let at = 0;
    while (at < into.length) {
      if (this.#start === this.#end) {
        if (into.length - at >= this.#buffer.length) {
          const n = await this.conn.read(into.subarray(at));
          if (n === null) return false;
          at += n;
          continue;
        }
        const n = await this.conn.read(this.#buffer);
        if (n === null) return false;
        this.#start = 0;
        this.#end = n;
      }
      const n = Math.min(into.length - at, this.#end - this.#start);
      into.set(this.#buffer.subarray(this.#start, this.#start + n), at);
      this.#start += n;
      at += n;
    }
    return true;
  }
}

/** The floor's files, `tree/dN/fI` (I < files, a tenth of them to a folder), as the driver made them. */
export function treeNames(files: number): string[] {
  const perDir = Math.max(1, files / 10);
  return Array.from({ length: files }, (_, i) => `tree/d${Math.floor(i / perDir)}/f${i}`);
}

/** A connection to the floor server, with TCP_NODELAY as fsd's PacketConn: no Nagle wait behind a small answer. */
export async function connectNoDelay(port: number): Promise<Deno.TcpConn> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  conn.setNoDelay(true);
  return conn;
}
