/**
 * What a flag's value may be, and how its text becomes one: whole numbers
 * and durations in a range, sizes, ports, one of a few words. A value out of
 * range or of the wrong kind is a UsageError naming the flag and the range.
 */

import { UsageError } from "./cli.ts";

/** Reads the text typed after a flag (`flag` is `--name`, for the message). */
export interface ValueParser<T> {
  parse(text: string, flag: string): T;
}

/** Any text, as typed. */
export const text: ValueParser<string> = { parse: (t) => t };

/** A parser from a function (a value of its own kind: a digest, an address range). */
export function custom<T>(parse: (text: string, flag: string) => T): ValueParser<T> {
  return { parse };
}

/** A whole number from `min` (default 0) to `max` (default 999999999), digits only. */
export function integer(min = 0, max = 999_999_999): ValueParser<number> {
  const range = max === 999_999_999 ? `${min} or more` : `${min} to ${max}`;
  return {
    parse(text, flag) {
      if (/^-\d/.test(text)) {
        throw new UsageError(`invalid ${flag}: ${text}: out of range: expected ${range}`);
      }
      if (!/^\d{1,9}$/.test(text)) {
        throw new UsageError(`invalid ${flag}: ${text}: expected a whole number, ${range}`);
      }
      const n = Number(text);
      if (n < min || n > max) {
        throw new UsageError(`invalid ${flag}: ${text}: out of range: expected ${range}`);
      }
      return n;
    },
  };
}

/**
 * A duration in seconds (fractions allowed), as milliseconds: from `min`
 * seconds (0 allowed only when min is 0; default: more than 0) to `max`.
 */
export function seconds(options: { min?: number; max?: number } = {}): ValueParser<number> {
  const { min, max } = options;
  const range = max !== undefined
    ? `from ${min ?? 0.001} to ${max}`
    : min === 0
    ? "0 or more"
    : "more than 0";
  return {
    parse(text, flag) {
      const value = /^-?\d+(\.\d+)?$/.test(text) ? Number(text) : NaN;
      if (Number.isNaN(value)) {
        throw new UsageError(`invalid ${flag}: ${text}: expected a number of seconds ${range}`);
      }
      const low = min === 0 ? value >= 0 : value >= (min ?? Number.MIN_VALUE);
      if (!low || (max !== undefined && value > max)) {
        throw new UsageError(
          `invalid ${flag}: ${text}: out of range: expected a number of seconds ${range}`,
        );
      }
      return Math.round(value * 1000);
    },
  };
}

const SIZE_UNITS: Record<string, number> = {
  "": 1,
  K: 1024,
  M: 1024 ** 2,
  G: 1024 ** 3,
  T: 1024 ** 4,
};

/** A size in bytes: `1048576`, `512K`, `100M`, `8G`, `1T` (binary units; `MiB`, `MB` mean the same). */
export const size: ValueParser<number> = {
  parse(text, flag) {
    const match = /^(\d+)(?:([KMGT])(?:i?B)?)?$/i.exec(text);
    if (!match) {
      throw new UsageError(`invalid ${flag}: ${text}: expected a size such as 500M or 8G`);
    }
    return Number(match[1]) * SIZE_UNITS[(match[2] ?? "").toUpperCase()];
  },
};

/** A TCP or UDP port, 0..65535, digits only; `what` names it in the message (PORT, or a flag's). */
export function parsePort(text: string, min = 0, what = "port"): number {
  if (!/^\d{1,5}$/.test(text) || Number(text) > 65535 || Number(text) < min) {
    throw new UsageError(`invalid ${what}: ${text}: expected a number from ${min} to 65535`);
  }
  return Number(text);
}

/** A port as a flag's value. */
export const port: ValueParser<number> = custom((text, flag) =>
  parsePort(text, 0, `port for ${flag}`)
);

/** One of a few words. */
export function oneOf<const W extends string>(...words: W[]): ValueParser<W> {
  const last = words[words.length - 1];
  const list = words.length === 1 ? last : `${words.slice(0, -1).join(", ")} or ${last}`;
  return {
    parse(text, flag) {
      if (!(words as string[]).includes(text)) {
        throw new UsageError(`invalid ${flag}: ${text}: expected ${list}`);
      }
      return text as W;
    },
  };
}

/** A probability: 0 to 1, or a percentage (5%); above 0 unless `zero`. */
export function rate(options: { zero?: boolean; percent?: boolean } = {}): ValueParser<number> {
  const range = options.zero
    ? `a rate from 0 to 1${options.percent ? ", or 0% to 100%" : ""}`
    : "a probability above 0, at most 1";
  return {
    parse(text, flag) {
      const match = /^(\d*(?:\.\d+)?(?:e-\d+)?)(%?)$/i.exec(text);
      const value = match && match[1] !== "" && (options.percent || !match[2])
        ? Number(match[1]) / (match[2] ? 100 : 1)
        : NaN;
      if (!(options.zero ? value >= 0 : value > 0) || !(value <= 1)) {
        throw new UsageError(`invalid ${flag}: ${text}: expected ${range}`);
      }
      return value;
    },
  };
}
