/**
 * The integrity check of get and put (docs/PROTOCOL.md, "Integrity"): on by
 * default with CRC-32, SHA-256 when asked for, off with --no-integrity.
 *
 * A check that was asked for (--integrity, --sha256) and cannot be done
 * (--fsd1, a server without that part of the extension, TFTP) fails the
 * file with exit 1 before any data moves. The default check that cannot be
 * done warns once per job on stderr and the job goes on, so that an older
 * server still serves; with --fsd1 the user chose plain fsd/1, which has no
 * checksum, and hears nothing.
 */

import { type ChecksumName, toHex } from "../../lib/bytes/sha256.ts";
import type { Granted } from "../../lib/fsd/negotiation.ts";
import type { TransferResult } from "../../lib/fsd/client_types.ts";
import { CommandError, UsageError } from "../shared/cli.ts";
import type { Flags } from "../shared/command.ts";
import { oneOf } from "../shared/values.ts";

const NAMES = ["crc32", "sha256"] as const;

/**
 * The flags: `--integrity [crc32|sha256]` and `--no-integrity` (put adds
 * `--sha256`, a short form of `--integrity sha256`; get's `--sha256 HEX` is
 * a known digest). Every side: over TFTP they are refused with exit 1, not
 * as a usage error (see refuseChecks).
 */
export const INTEGRITY_FLAGS = {
  integrity: {
    arg: "[crc32|sha256]",
    value: oneOf(...NAMES),
    bare: { value: "crc32", words: NAMES },
    help: `require the check of each file: crc32 (the default check)
or sha256 (a cryptographic digest); when it cannot be
done, the file fails (exit 1) instead of going unchecked`,
  },
  "no-integrity": {
    type: "boolean",
    help: `no checksum at all (by default every file is checked
with CRC-32, sent after its data, before it gets its name)`,
  },
} as const satisfies Flags;

/**
 * TFTP has no checksum: a check the server would have to send (--integrity,
 * put's --sha256) is refused with exit 1, never skipped. (get's --sha256 HEX
 * the client checks alone, over TFTP too.)
 */
export function refuseChecks(values: { integrity?: string; sha256?: unknown }): void {
  const flag = values.integrity !== undefined
    ? "--integrity"
    : values.sha256 !== undefined && values.sha256 !== false
    ? "--sha256"
    : undefined;
  if (flag) throw new CommandError(`${flag} cannot be checked over TFTP: it carries no checksum`);
}

/** The job's integrity check, and what to do when it cannot be done. */
export class Integrity {
  /** The checksum to ask for (undefined: none). */
  readonly checksum: ChecksumName | undefined;
  /** The flag that asked for it (--integrity, --sha256), undefined for the default check. */
  readonly flag: string | undefined;
  #warned = false;

  constructor(checksum: ChecksumName | undefined, flag?: string) {
    this.checksum = checksum;
    this.flag = flag;
  }

  /** From the flags: `fsd1` is --fsd1; `sha256` is put's --sha256 (get's HEX form is handled by get). */
  static parse(
    values: { integrity?: string; "no-integrity"?: boolean; sha256?: boolean | string },
    fsd1: boolean,
  ): Integrity {
    const asked = values.integrity;
    const flag = values.sha256 === true ? "--sha256" : asked !== undefined ? "--integrity" : "";
    if (values["no-integrity"]) {
      if (flag) throw new UsageError(`--no-integrity does not mix with ${flag}`);
      return new Integrity(undefined);
    }
    if (!flag) return new Integrity(fsd1 ? undefined : "crc32");
    if (fsd1) {
      throw new CommandError(
        `${flag} cannot be checked with --fsd1: plain fsd/1 carries no checksum`,
      );
    }
    return new Integrity(values.sha256 === true ? "sha256" : asked as ChecksumName, flag);
  }

  /** Before a transfer in plain fsd/1 (the server turned the extension down). */
  plain(name: string): void {
    if (this.checksum) this.#cannot(name, "the server speaks only fsd/1, which has no checksum");
  }

  /** What the server granted: the check it will not do fails or warns. */
  granted(granted: Granted, name: string): void {
    if (this.checksum && granted.checksum !== this.checksum) {
      this.#cannot(name, `the server does not send ${this.checksum} checksums`);
    }
  }

  #cannot(name: string, why: string): void {
    if (this.flag) throw new CommandError(`${this.flag}: ${why}: ${name} not transferred`);
    if (this.#warned) return;
    this.#warned = true;
    console.error(`fsd: warning: ${why}: files are not checked (--no-integrity hushes this)`);
  }
}

/** The report's fields for a transfer's checksum: `crc32` or `sha256` (hex), and `verified`. */
export function digestFields(
  result: TransferResult,
): { crc32?: string; sha256?: string; verified?: boolean } {
  if (!result.checksum || !result.digest) return {};
  return { [result.checksum]: toHex(result.digest), verified: result.verified };
}
