/**
 * The connection limits every TCP server of fsd takes (serve, echo serve,
 * proxy): --max-clients, --max-per-ip, --idle-timeout, declared once with
 * each server's defaults.
 */

import type { FlagSpec } from "./command.ts";
import { integer, seconds } from "./values.ts";

export interface LimitDefaults {
  maxClients: number;
  maxPerIp: number;
  idleTimeoutMs: number;
}

/**
 * The three flags, with `defaults` in their help and `side` (a side of the
 * command, if it has sides). `idleNever`: --idle-timeout 0 turns it off.
 */
export function limitFlags(defaults: LimitDefaults, side?: string, idleNever = true) {
  return {
    "idle-timeout": {
      arg: "SECONDS",
      value: seconds(idleNever ? { min: 0 } : {}),
      side,
      help: `close connections silent for this long (default ${defaults.idleTimeoutMs / 1000}${
        idleNever ? "; 0: never" : ""
      })`,
    },
    "max-clients": {
      arg: "N",
      value: integer(),
      side,
      help: `connections served at once (default ${defaults.maxClients}; 0: no limit)`,
    },
    "max-per-ip": {
      arg: "N",
      value: integer(),
      side,
      help: `connections from one address (default ${defaults.maxPerIp}; 0: no limit)`,
    },
  } satisfies Record<string, FlagSpec<number>>;
}
