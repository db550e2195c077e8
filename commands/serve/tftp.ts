/**
 * The TFTP part of `fsd serve`: its flags, their help, and starting the
 * TFTP server beside (or instead of) fsd/1 on the same directory and host.
 */

import { FileStore } from "../../lib/store/file_store.ts";
import type { ServerEvent } from "../../lib/store/log.ts";
import { BLKSIZE_RANGE } from "../../lib/tftp/options.ts";
import { TFTP_DEFAULTS, TftpServer } from "../../lib/tftp/server.ts";
import { parseCount, parsePort, parseSeconds, UsageError } from "../shared/cli.ts";

export const TFTP_SERVE_FLAGS = {
  tftp: { type: "string" },
  "tftp-only": { type: "boolean" },
  "tftp-max-blksize": { type: "string" },
  "tftp-max-window": { type: "string" },
  "tftp-port-range": { type: "string" },
  "tftp-timeout": { type: "string" },
  "tftp-no-upload": { type: "boolean" },
  "tftp-unique-root": { type: "boolean" },
} as const;

export const TFTP_SERVE_HELP = `
TFTP (RFC 1350 over UDP, with blksize, timeout, tsize and windowsize):
  --tftp UDPPORT            also serve DIR over TFTP on UDP port UDPPORT (69 is
                            TFTP's own), on the same --host
  --tftp-only               serve TFTP alone, on --tftp UDPPORT or else on PORT
  --tftp-max-blksize N      largest block granted (${BLKSIZE_RANGE[0]}-${
  BLKSIZE_RANGE[1]
}, default ${BLKSIZE_RANGE[1]})
  --tftp-max-window N       largest window granted (default ${TFTP_DEFAULTS.maxWindowSize})
  --tftp-port-range LO:HI   take each transfer's port from LO..HI (firewalls, NAT)
  --tftp-timeout SECONDS    resend after this long when the client asks no
                            timeout (default 1), up to ${TFTP_DEFAULTS.retries} times, then give up
  --tftp-no-upload          refuse TFTP uploads (fsd/1 still takes them)
  --tftp-unique-root        serve each client from DIR/ITS-IP-ADDRESS/ (as
                            dnsmasq's --tftp-unique-root)`;

interface TftpFlags {
  tftp?: string;
  "tftp-only"?: boolean;
  "tftp-max-blksize"?: string;
  "tftp-max-window"?: string;
  "tftp-port-range"?: string;
  "tftp-timeout"?: string;
  "tftp-no-upload"?: boolean;
  "tftp-unique-root"?: boolean;
}

/** What the shared flags of `fsd serve` say. */
export interface SharedServeConfig {
  root: string;
  port: number;
  hostname?: string;
  readOnly: boolean;
  maxUploadBytes?: number;
  maxClients?: number;
  maxPerIp?: number;
  log: (event: ServerEvent) => void;
}

/** Whether fsd/1 should run (not with --tftp-only). */
export function wantsFsd1(values: TftpFlags): boolean {
  if (values["tftp-only"]) return false;
  const tftpFlagGiven = Object.entries(values).some(([k, v]) =>
    k.startsWith("tftp-") && v !== undefined
  );
  if (tftpFlagGiven && values.tftp === undefined) {
    throw new UsageError("the --tftp-* options need --tftp UDPPORT or --tftp-only");
  }
  return true;
}

function parseRange(text: string): [number, number] {
  const match = /^(\d{1,5}):(\d{1,5})$/.exec(text);
  const [lo, hi] = match ? [Number(match[1]), Number(match[2])] : [NaN, NaN];
  if (!match || lo < 1 || hi > 65535 || lo > hi) {
    throw new UsageError(
      `invalid --tftp-port-range: ${text}: expected LO:HI, 1 <= LO <= HI <= 65535`,
    );
  }
  return [lo, hi];
}

function parseBlockSize(text: string): number {
  const n = parseCount(text, "--tftp-max-blksize", BLKSIZE_RANGE[0]);
  if (n > BLKSIZE_RANGE[1]) {
    throw new UsageError(
      `invalid --tftp-max-blksize: ${text}: expected ${BLKSIZE_RANGE[0]} to ${BLKSIZE_RANGE[1]}`,
    );
  }
  return n;
}

/** Starts the TFTP server if the flags ask for it; `shared` is fsd/1's store when it runs too. */
export async function startTftp(
  values: TftpFlags,
  common: SharedServeConfig,
  shared: boolean,
): Promise<TftpServer | undefined> {
  const only = values["tftp-only"] ?? false;
  if (values.tftp === undefined && !only) return undefined;
  const given = <T>(text: string | undefined, parse: (t: string) => T) =>
    text === undefined ? undefined : parse(text);
  const config = {
    ...common,
    port: values.tftp === undefined ? common.port : parsePort(values.tftp),
    portRange: given(values["tftp-port-range"], parseRange),
    maxBlockSize: given(values["tftp-max-blksize"], parseBlockSize),
    maxWindowSize: given(values["tftp-max-window"], (t) => parseCount(t, "--tftp-max-window", 1)),
    timeoutMs: given(values["tftp-timeout"], (t) => parseSeconds(t, "--tftp-timeout")),
    noUpload: values["tftp-no-upload"] ?? false,
    uniqueRoot: values["tftp-unique-root"] ?? false,
  };
  // Beside fsd/1, whose start already removed stale uploads, the store is opened without that.
  const store = shared ? await FileStore.open(config) : undefined;
  return await TftpServer.start(config, store);
}
