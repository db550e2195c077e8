/**
 * The receiver's side of the integrity option (docs/PROTOCOL.md): the
 * check of the peer's SUM against the digest of what arrived, run before
 * the last ACK, so that a mismatch is an error before anything gets a name.
 */

import { sameDigest, type Sha256, toHex } from "../bytes/sha256.ts";
import { ErrorCode, ProtocolError } from "../store/errors.ts";

/** A file whose SHA-256 is not the one it should have: ERR 0 to the peer, nothing kept. */
export class DigestMismatchError extends ProtocolError {
  constructor(message: string) {
    super(ErrorCode.OTHER, message);
  }
}

export class DigestCheck {
  /** Our digest, once computed. */
  digest: Uint8Array | undefined;
  /** Whether the peer's SUM matched it. */
  verified = false;
  #hash: Sha256;
  #peer: string;

  /** `hash` sees every byte received; `peer` names the sender in the mismatch message. */
  constructor(hash: Sha256, peer: "server" | "client") {
    this.#hash = hash;
    this.#peer = peer;
  }

  /** For `receiveFile`'s checkDigest: throws ERR 0 "sha256 mismatch" unless `theirs` is ours. */
  check = async (theirs: Uint8Array): Promise<void> => {
    const ours = await this.final();
    if (!sameDigest(ours, theirs)) {
      throw new DigestMismatchError(
        `sha256 mismatch: received ${toHex(ours)}, the ${this.#peer} sent ${toHex(theirs)}`,
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
