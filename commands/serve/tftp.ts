/**
 * The TFTP part of `fsd serve`: its flags, their help, and starting the
 * TFTP server beside (or instead of) fsd/1 on the same directory and host.
 */

import { FileStore } from "../../lib/store/file_store.ts";
import { accessFor, type AccountsConfig } from "../../lib/fsd/server.ts";
import type { ServerEvent } from "../../lib/store/log.ts";
import { BLKSIZE_RANGE } from "../../lib/tftp/options.ts";
import { TFTP_DEFAULTS, TftpServer } from "../../lib/tftp/server.ts";
import type { DatagramTap } from "../../lib/tftp/channel.ts";
import { UsageError } from "../shared/cli.ts";
import type { Flags, FlagValues } from "../shared/command.ts";
import { custom, integer, port, seconds } from "../shared/values.ts";

export const TFTP_SERVE_FLAGS = {
  tftp: {
    arg: "UDPPORT",
    value: port,
    group: "tftp",
    help: `also serve DIR over TFTP on UDP port UDPPORT (69 is
TFTP's own), on the same --host`,
  },
  "tftp-only": {
    type: "boolean",
    group: "tftp",
    help: "serve TFTP alone, on --tftp UDPPORT or else on PORT",
  },
  "tftp-max-blksize": {
    arg: "N",
    value: integer(...BLKSIZE_RANGE),
    group: "tftp",
    help: `largest block granted (${BLKSIZE_RANGE[0]}-${BLKSIZE_RANGE[1]}, default ${
      BLKSIZE_RANGE[1]
    })`,
  },
  "tftp-max-window": {
    arg: "N",
    value: integer(1),
    group: "tftp",
    help: `largest window granted (default ${TFTP_DEFAULTS.maxWindowSize})`,
  },
  "tftp-port-range": {
    arg: "LO:HI",
    value: custom(parseRange),
    group: "tftp",
    help: "take each transfer's port from LO..HI (firewalls, NAT)",
  },
  "tftp-timeout": {
    arg: "SECONDS",
    value: seconds(),
    group: "tftp",
    help: `resend after this long when the client asks no
timeout (default 1), up to ${TFTP_DEFAULTS.retries} times, then give up`,
  },
  "tftp-no-upload": {
    type: "boolean",
    group: "tftp",
    help: "refuse TFTP uploads (fsd/1 still takes them)",
  },
  "tftp-unique-root": {
    type: "boolean",
    group: "tftp",
    help: `serve each client from DIR/ITS-IP-ADDRESS/ (as
dnsmasq's --tftp-unique-root)`,
  },
} as const satisfies Flags;

/** The heading of the TFTP flags in serve's help. */
export const TFTP_SERVE_HEADING =
  "TFTP (RFC 1350 over UDP, with blksize, timeout, tsize and windowsize):";

type TftpFlags = Partial<FlagValues<typeof TFTP_SERVE_FLAGS>>;

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
  /** Sees each TFTP transfer's datagrams (the live page). */
  datagramTap?: (id: number) => DatagramTap;
}

/** Whether fsd/1 should run (not with --tftp-only). */
export function wantsFsd1(values: TftpFlags): boolean {
  if (values["tftp-only"]) return false;
  const tftpFlagGiven = Object.entries(values).some(([k, v]) =>
    k.startsWith("tftp-") && v !== undefined && v !== false
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

/** What TFTP, which has no login, serves on a server with accounts: said at start. */
export function tftpExposure(accounts: AccountsConfig | undefined): string | undefined {
  if (!accounts) return undefined;
  return `TFTP has no login: it serves ${
    accessFor(accounts).describeAnonymous()
  }, and takes no uploads`;
}

/** Starts the TFTP server if the flags ask for it; `shared` is fsd/1's store when it runs too. */
export async function startTftp(
  values: TftpFlags,
  common: SharedServeConfig,
  shared: boolean,
  accounts?: AccountsConfig,
): Promise<TftpServer | undefined> {
  const only = values["tftp-only"] ?? false;
  if (values.tftp === undefined && !only) return undefined;
  const config = {
    ...common,
    port: values.tftp ?? common.port,
    portRange: values["tftp-port-range"],
    maxBlockSize: values["tftp-max-blksize"],
    maxWindowSize: values["tftp-max-window"],
    timeoutMs: values["tftp-timeout"],
    noUpload: values["tftp-no-upload"] ?? false,
    uniqueRoot: values["tftp-unique-root"] ?? false,
    access: accessFor(accounts),
    // Downloads on threads of their own where Deno grants --allow-ffi (lib/tftp/send_pool.ts).
    senderModule: Deno.mainModule,
  };
  // Beside fsd/1, whose start already removed stale uploads, the store is opened without that.
  const store = shared ? await FileStore.open(config) : undefined;
  return await TftpServer.start(config, store);
}
