/**
 * What the client's requests take and tell: its configuration, the options
 * of a download or an upload, and what a transfer reports.
 */

import type { ChecksumName, Hasher } from "../bytes/sha256.ts";
import type { TlsClientConfig } from "../net/tls.ts";
import type { Granted } from "./negotiation.ts";
import type { ConnTap } from "./packet_conn.ts";
import type { TransferOptions } from "./window.ts";

export interface ClientConfig {
  /** Give up when the server has said nothing for this long (default 60 s; 0 never). */
  timeoutMs?: number;
  /** Give up when a connected server sends no greeting for this long (default 5 s, at most timeoutMs). */
  greetingTimeoutMs?: number;
  /** Sees the connection's bytes (tracing, capture files). */
  tap?: ConnTap;
  /** Connect with TLS, verifying the server's certificate so (lib/net/tls.ts). */
  tls?: TlsClientConfig;
}

export interface ClientTransferOptions extends TransferOptions {
  /** The transfer size, when the server tells it (downloads with options). */
  onSize?: (bytes: number) => void;
  /** Ask for the integrity check: the sender's checksum of the whole file after the last block. */
  integrity?: ChecksumName;
  /** What the OACK said, before any data moves (a throw here aborts the request). */
  onGranted?: (granted: Granted) => Promise<void> | void;
}

export interface DownloadOptions extends ClientTransferOptions {
  /** Ask what REMOTE is; a directory's listing is read and dropped, and IsADirectory thrown. */
  expectFile?: boolean;
  /**
   * Resume at `offset`, if the file still has `mtime`; `hashPrefix` feeds the
   * hash with the bytes before `offset` once the server agrees. When it does
   * not (the file changed, or an older server), the data starts at 0 and
   * `onGranted` hears offset 0 or none.
   */
  resume?: { offset: number; mtime: number; hashPrefix: (hash: Hasher) => Promise<void> };
  /** A download that may resume later: on failure, what arrived is still written out. */
  keepPartial?: boolean;
  /** Ask for the file's mtime (reports want it; a resumable download asks anyway). */
  wantMtime?: boolean;
  /** Compute the SHA-256 even when the server does not send one (to compare with a known one). */
  wantDigest?: boolean;
}

export interface UploadOptions extends ClientTransferOptions {
  /** The upload's size, when known: the server can refuse a too-large one before data moves. */
  size?: number;
  /** The mtime (Unix seconds) the file should get on the server (an OACK mtime=0: not kept). */
  mtime?: number;
}

export interface TransferResult {
  /** Bytes moved over the network. */
  bytes: number;
  /** Where the data started in the file (a resumed download), else 0. */
  offset: number;
  /** The file's size and mtime (Unix seconds), when the server told them. */
  size?: number;
  mtime?: number;
  /** The checksum of the whole file, when computed; `verified` when the peer's SUM matched it. */
  checksum?: ChecksumName;
  digest?: Uint8Array;
  verified: boolean;
}
