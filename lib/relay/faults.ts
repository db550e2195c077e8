/**
 * The faults a relay injects, one small type each, named as toxiproxy names
 * them, and the list that describes them: its name (the proxy's flag), the
 * unit of its value, the least value, and what it does. Pipe applies them
 * to each chunk; a relay's connection applies reset-after and timeout.
 */

/** latency: delay every chunk by this many milliseconds. */
export interface Latency {
  latencyMs?: number;
}
/** jitter: ... plus or minus up to this many more, at random. */
export interface Jitter {
  jitterMs?: number;
}
/** bandwidth: cap the rate at this many kilobytes (1000 bytes) per second. */
export interface Bandwidth {
  bandwidthKBps?: number;
}
/** slice: pass data on in writes of at most this many bytes. */
export interface Slice {
  sliceBytes?: number;
}
/** limit-data: close the connection once this many bytes have passed in this direction. */
export interface LimitData {
  limitDataBytes?: number;
}
/** reset-after: abort the connection this long after it opened. */
export interface ResetAfter {
  resetAfterMs?: number;
}
/** timeout: pass no data at all; close the connection after this long (0: hold it open). */
export interface Timeout {
  timeoutMs?: number;
}
/** corrupt: change each byte passed with this probability (0 to 1): XOR with a random non-zero byte. */
export interface Corrupt {
  corruptRate?: number;
}

/** The faults of one direction. */
export type Faults =
  & Latency
  & Jitter
  & Bandwidth
  & Slice
  & LimitData
  & ResetAfter
  & Timeout
  & Corrupt;

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
}

/** Every fault, in the order the proxy lists them. A new fault is one entry here and its effect. */
export const FAULTS: readonly FaultKind[] = [
  {
    name: "latency",
    field: "latencyMs",
    unit: "MS",
    min: 0,
    does: "delay every chunk by MS milliseconds",
  },
  {
    name: "jitter",
    field: "jitterMs",
    unit: "MS",
    min: 0,
    does: "... plus or minus up to MS more, at random",
  },
  {
    name: "bandwidth",
    field: "bandwidthKBps",
    unit: "KBPS",
    min: 1,
    does: "cap the rate at KBPS kilobytes (1000 bytes) per second",
  },
  {
    name: "slice",
    field: "sliceBytes",
    unit: "BYTES",
    min: 1,
    does: "pass data on in writes of at most BYTES bytes",
  },
  {
    name: "limit-data",
    field: "limitDataBytes",
    unit: "BYTES",
    min: 0,
    does: "close the connection after BYTES bytes",
  },
  {
    name: "reset-after",
    field: "resetAfterMs",
    unit: "MS",
    min: 0,
    does: "abort the connection MS milliseconds after it opens",
  },
  {
    name: "timeout",
    field: "timeoutMs",
    unit: "MS",
    min: 0,
    does:
      "pass no data at all; close the connection after MS\nmilliseconds (0: hold it open until a side closes)",
  },
  {
    name: "corrupt",
    field: "corruptRate",
    unit: "RATE",
    min: 0,
    does:
      "change each byte with probability RATE (0 to 1, e.g.\n0.000001): what integrity checks must catch",
  },
];
