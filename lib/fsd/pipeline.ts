/**
 * The order of exchanges on one client connection, and pipelined reads.
 *
 * Every exchange (a read, an upload, a listing) takes a turn: it reads its
 * answer only after every exchange started before it has ended, so several
 * callers may share a connection. A read whose server grants `pipeline`
 * (docs/PROTOCOL.md, "Pipelined reads") needs no ACK, so once the server has
 * granted it on this connection, later reads send their request ahead of
 * their turn: the server finds the next request waiting when it ends a
 * read, and requests go out several to a socket write.
 */

import { concatAll } from "../bytes/source_sink.ts";
import { ErrorCode, ProtocolError } from "../store/errors.ts";
import type { PacketConn } from "./packet_conn.ts";

/**
 * Requests sent ahead go out at once while at most this many sent before
 * them are unanswered; past that they wait and go out together when the
 * server has answered down to it (it never runs out of work meanwhile).
 */
const SEND_WHILE_UNANSWERED = 2;

/**
 * An exchange whose connection closed before its turn came (another
 * exchange on it failed, or the server refused the options extension):
 * nothing of its answer was read, so it can be run again on a new one.
 */
export class NotAnswered extends Deno.errors.NotConnected {
  constructor() {
    super("connection closed before the answer");
  }
}

export class Pipeline {
  readonly #conn: PacketConn;
  /** Ends when the last exchange started has ended (never rejects). */
  #turn: Promise<void> = Promise.resolve();
  /**
   * Ends when the last exchange started has sent its request (or held it to
   * go out in order): requests go out in the order of the turns, whatever
   * order their callers come back in.
   */
  #sent: Promise<void> = Promise.resolve();
  /** Whether the server pipelines reads here: unknown until its first OACK to a read says. */
  #pipelines: boolean | undefined;
  readonly #known = Promise.withResolvers<void>();
  /** Requests sent ahead whose answers have not ended; requests waiting to go out. */
  #unanswered = 0;
  #held: Uint8Array[] = [];
  /** Writes of requests sent ahead, one after another. */
  #writing: Promise<void> = Promise.resolve();

  constructor(conn: PacketConn) {
    this.#conn = conn;
  }

  /** Runs `exchange` in its turn: after every exchange started before it has ended. */
  async alone<T>(exchange: () => Promise<T>): Promise<T> {
    // Its writes come anywhere in it: it says its request is sent only when it ends, so nothing
    // after it goes out before.
    const { previous, release } = this.#take();
    try {
      await previous;
      this.#checkOpen();
      return await exchange();
    } finally {
      release();
    }
  }

  /**
   * A read: `ask` (its OPT and request) goes out ahead of its turn when the
   * server pipelines here, else in its turn; `answer` then reads what came
   * back (`ahead` tells which: an answer to a request sent ahead must grant
   * `pipeline` again, see `learned`).
   */
  async read<T>(ask: Uint8Array, answer: (ahead: boolean) => Promise<T>): Promise<T> {
    const { previous, priorSent, sent, release } = this.#take();
    try {
      await priorSent;
      if (this.#pipelines === undefined) await Promise.race([previous, this.#known.promise]);
      const ahead = this.#pipelines === true && !this.#conn.closed;
      if (ahead) {
        this.#sendAhead(ask);
        sent();
      }
      await previous;
      this.#checkOpen();
      if (!ahead) {
        await this.#conn.write(ask);
        sent();
      } else if (this.#unanswered === 0) this.#flush(); // its request still held: out now
      try {
        return await answer(ahead);
      } finally {
        if (ahead) this.#answered();
      }
    } finally {
      release();
    }
  }

  /**
   * What the server's OACK to a read said of `pipeline`. A server that
   * granted it once grants it to every read on the connection: a request
   * sent ahead and answered without it is a violation (the server would wait
   * for ACKs while our next requests sit in its way).
   */
  learned(granted: boolean, ahead: boolean): void {
    if (ahead && !granted) {
      throw new ProtocolError(
        ErrorCode.ILLEGAL_OPERATION,
        "unexpected OACK: pipeline not granted to a request sent ahead",
      );
    }
    if (this.#pipelines !== undefined) return;
    this.#pipelines = granted;
    this.#known.resolve();
  }

  /**
   * The next turn: `previous` ends with the exchange before it, `priorSent`
   * once every earlier request is sent; `sent` says this one's is, and
   * `release` ends the turn (and says it is sent, if not yet).
   */
  #take(): {
    previous: Promise<void>;
    priorSent: Promise<void>;
    sent: () => void;
    release: () => void;
  } {
    const previous = this.#turn;
    const priorSent = this.#sent;
    const turn = Promise.withResolvers<void>();
    const sending = Promise.withResolvers<void>();
    this.#turn = turn.promise;
    this.#sent = sending.promise;
    return {
      previous,
      priorSent,
      sent: sending.resolve,
      release: () => {
        sending.resolve();
        turn.resolve();
      },
    };
  }

  #checkOpen(): void {
    if (this.#conn.closed) throw new NotAnswered();
  }

  #sendAhead(ask: Uint8Array): void {
    this.#held.push(ask);
    if (this.#unanswered <= SEND_WHILE_UNANSWERED) this.#flush();
  }

  #answered(): void {
    this.#unanswered--;
    if (this.#held.length > 0 && this.#unanswered <= SEND_WHILE_UNANSWERED) this.#flush();
  }

  /** Sends the held requests in one write, after any write of them still under way. */
  #flush(): void {
    if (this.#held.length === 0) return;
    const bytes = this.#held.length === 1 ? this.#held[0] : concatAll(this.#held);
    this.#unanswered += this.#held.length;
    this.#held = [];
    // A failed write breaks the connection: the reads waiting on it see the close.
    this.#writing = this.#writing.then(() => this.#conn.write(bytes)).catch(() =>
      this.#conn.close()
    );
  }
}
