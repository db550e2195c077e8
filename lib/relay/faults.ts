/**
 * The faults a relay injects, named as toxiproxy names them, and the list
 * that describes them: its name (the proxy's flag), the unit of its value,
 * the least value, what it does, and its effect (a Toxic of toxics.ts,
 * one small type per fault). Pipe runs a direction's toxics; a relay's
 * connection starts the timers of those that abort it.
 */

import {
  Bandwidth,
  Corrupt,
  Jitter,
  Latency,
  LimitData,
  ResetAfter,
  Slice,
  Timeout,
  type Toxic,
} from "./toxics.ts";

/** The faults of one direction, each a value of the proxy's flag of that name. */
export interface Faults {
  /** latency: delay every chunk by this many milliseconds. */
  latencyMs?: number;
  /** jitter: ... plus or minus up to this many more, at random. */
  jitterMs?: number;
  /** bandwidth: cap the rate at this many kilobytes (1000 bytes) per second. */
  bandwidthKBps?: number;
  /** slice: pass data on in writes of at most this many bytes. */
  sliceBytes?: number;
  /** limit-data: close the connection once this many bytes have passed in this direction. */
  limitDataBytes?: number;
  /** reset-after: abort the connection this long after it opened. */
  resetAfterMs?: number;
  /** timeout: pass no data at all; close the connection after this long (0: hold it open). */
  timeoutMs?: number;
  /** corrupt: change each byte passed with this probability (0 to 1): XOR with a random non-zero byte. */
  corruptRate?: number;
}

/** One fault as the proxy offers it: its name, its field in Faults, its value and what it does. */
export interface FaultKind {
  name: string;
  field: keyof Faults;
  /** The unit of the value, as a placeholder: MS, BYTES, KBPS, RATE. */
  unit: string;
  /** A whole number at least this large; or, for "RATE", a probability above 0, at most 1. */
  min: number;
  /** What it does, for help. */
  does: string;
  /** Its effect on one direction of one connection, or none for a value that changes nothing. */
  toxic: (value: number) => Toxic | undefined;
}

/** Every fault, in the order the proxy lists them. A new fault is one entry here and its effect. */
export const FAULTS: readonly FaultKind[] = [
  {
    name: "latency",
    field: "latencyMs",
    toxic: (ms) => ms ? new Latency(ms) : undefined,
    unit: "MS",
    min: 0,
    does: "delay every chunk by MS milliseconds",
  },
  {
    name: "jitter",
    field: "jitterMs",
    toxic: (ms) => ms ? new Jitter(ms) : undefined,
    unit: "MS",
    min: 0,
    does: "... plus or minus up to MS more, at random",
  },
  {
    name: "bandwidth",
    field: "bandwidthKBps",
    toxic: (kbps) => new Bandwidth(kbps),
    unit: "KBPS",
    min: 1,
    does: "cap the rate at KBPS kilobytes (1000 bytes) per second",
  },
  {
    name: "slice",
    field: "sliceBytes",
    toxic: (bytes) => new Slice(bytes),
    unit: "BYTES",
    min: 1,
    does: "pass data on in writes of at most BYTES bytes",
  },
  {
    name: "limit-data",
    field: "limitDataBytes",
    toxic: (bytes) => new LimitData(bytes),
    unit: "BYTES",
    min: 0,
    does: "close the connection after BYTES bytes",
  },
  {
    name: "reset-after",
    field: "resetAfterMs",
    toxic: (ms) => new ResetAfter(ms),
    unit: "MS",
    min: 0,
    does: "abort the connection MS milliseconds after it opens",
  },
  {
    name: "timeout",
    field: "timeoutMs",
    toxic: (ms) => new Timeout(ms),
    unit: "MS",
    min: 0,
    does:
      "pass no data at all; close the connection after MS\nmilliseconds (0: hold it open until a side closes)",
  },
  {
    name: "corrupt",
    field: "corruptRate",
    toxic: (rate) => rate ? new Corrupt(rate) : undefined,
    unit: "RATE",
    min: 0,
    does:
      "change each byte with probability RATE (0 to 1, e.g.\n0.000001): what integrity checks must catch",
  },
];

/** The toxics of one direction's faults, new for each connection (some keep state), in FAULTS' order. */
export function toxics(faults: Faults): Toxic[] {
  return FAULTS.flatMap((fault) => {
    const value = faults[fault.field];
    return value === undefined ? [] : [fault.toxic(value)].filter((t) => t !== undefined);
  });
}
