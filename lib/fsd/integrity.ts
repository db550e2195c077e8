/**
 * The receiver's side of the integrity option (docs/PROTOCOL.md): the
 * check of the peer's SUM against the checksum of what arrived (CRC-32 or
 * SHA-256, as negotiated), run before the last ACK, so that a mismatch is
 * an error before anything gets a name.
 */

import { type ChecksumName, DIGEST_SIZES, type Hasher, toHex } from "../bytes/sha256.ts";
import { sameBytes } from "../bytes/source_sink.ts";
import { ErrorCode, ProtocolError } from "../store/errors.ts";

/** A file whose checksum is not the one it should have: ERR 0 to the peer, nothing kept. */
export class DigestMismatchError extends ProtocolError {
  constructor(message: string) {
    super(ErrorCode.OTHER, message);
  }
}

/** What `receiveFile` needs to check a SUM: its size, and the check. */
export interface SumCheck {
  /** Bytes of the digest the SUM carries. */
  readonly size: number;
  /** Throws unless `theirs` is the digest of what arrived. */
  check(theirs: Uint8Array): Promise<void>;
}

export class DigestCheck implements SumCheck {
  /** Our digest, once computed. */
  digest: Uint8Array | undefined;
  /** Whether the peer's SUM matched it. */
  verified = false;
  readonly name: ChecksumName;
  readonly size: number;
  #hash: Hasher;
  #peer: string;

  /** `hash` (a `name` hasher) sees every byte received; `peer` names the sender in the mismatch message. */
  constructor(name: ChecksumName, hash: Hasher, peer: "server" | "client") {
    this.name = name;
    this.size = DIGEST_SIZES[name];
    this.#hash = hash;
    this.#peer = peer;
  }

  /** Throws ERR 0 "crc32 mismatch" (or "sha256 mismatch") unless `theirs` is ours. */
  check = async (theirs: Uint8Array): Promise<void> => {
    const ours = await this.final();
    if (!sameBytes(ours, theirs)) {
      throw new DigestMismatchError(
        `${this.name} mismatch: received ${toHex(ours)}, the ${this.#peer} sent ${toHex(theirs)}`,
      );
    }
    this.verified = true;
  };

  /** Our digest (computed now if no SUM came). */
  async final(): Promise<Uint8Array> {
    this.digest ??= await this.#hash.digest();
    return this.digest;
  }
}
