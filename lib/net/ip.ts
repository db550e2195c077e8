/**
 * IP addresses as bytes: parsing the text forms (dotted IPv4, RFC 4291
 * IPv6), formatting them back (RFC 5952 for IPv6), and address ranges in
 * CIDR notation. Strict: anything ambiguous (leading zeros in IPv4, a zone
 * index, stray characters) is not an address.
 */

/** An address range: `bits` leading bits of `address` fixed. */
export interface Cidr {
  address: Uint8Array;
  bits: number;
}

const DECIMAL_OCTET = /^(0|[1-9][0-9]{0,2})$/;
const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;

/** 4 bytes for IPv4, 16 for IPv6, or undefined if `text` is neither. */
export function parseIp(text: string): Uint8Array | undefined {
  return text.includes(":") ? parseIpv6(text) : parseIpv4(text);
}

export function parseIpv4(text: string): Uint8Array | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    if (!DECIMAL_OCTET.test(parts[i])) return undefined;
    const value = Number(parts[i]);
    if (value > 255) return undefined;
    out[i] = value;
  }
  return out;
}

export function parseIpv6(text: string): Uint8Array | undefined {
  if (text.length > 45) return undefined;
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const head = groups(halves[0]);
  const tail = halves.length === 2 ? groups(halves[1]) : [];
  if (!head || !tail) return undefined;
  const total = head.length + tail.length;
  if (halves.length === 2 ? total > 7 : total !== 8) return undefined;
  const words = [...head, ...new Array(8 - total).fill(0), ...tail];
  const out = new Uint8Array(16);
  words.forEach((word, i) => {
    out[2 * i] = word >> 8;
    out[2 * i + 1] = word & 0xff;
  });
  return out;
}

/** The 16-bit groups of one side of "::" (an embedded IPv4 counts as two), or undefined. */
function groups(text: string): number[] | undefined {
  if (text === "") return [];
  const parts = text.split(":");
  const out: number[] = [];
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i];
    if (i === parts.length - 1 && part.includes(".")) {
      const v4 = parseIpv4(part);
      if (!v4) return undefined;
      out.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
    } else if (HEX_GROUP.test(part)) {
      out.push(parseInt(part, 16));
    } else {
      return undefined;
    }
  }
  return out;
}

/** The text form: dotted for IPv4, RFC 5952 (lower case, longest zero run as "::") for IPv6. */
export function formatIp(bytes: Uint8Array): string {
  if (bytes.length === 4) return bytes.join(".");
  const words = Array.from({ length: 8 }, (_, i) => (bytes[2 * i] << 8) | bytes[2 * i + 1]);
  let best = { at: -1, length: 1 }; // a single zero group is not shortened
  for (let i = 0; i < 8;) {
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > best.length) best = { at: i, length: j - i };
    i = j === i ? i + 1 : j;
  }
  const hex = words.map((w) => w.toString(16));
  if (best.at < 0) return hex.join(":");
  return `${hex.slice(0, best.at).join(":")}::${hex.slice(best.at + best.length).join(":")}`;
}

/** IPv4 addresses written as IPv6 (::ffff:a.b.c.d) become plain IPv4. */
export function unmapIpv4(bytes: Uint8Array): Uint8Array {
  if (bytes.length !== 16) return bytes;
  for (let i = 0; i < 10; i++) if (bytes[i] !== 0) return bytes;
  if (bytes[10] !== 0xff || bytes[11] !== 0xff) return bytes;
  return bytes.slice(12);
}

/** `ADDR` or `ADDR/BITS`; undefined if it is not one. Host bits set in ADDR are allowed and ignored. */
export function parseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf("/");
  const address = parseIp(slash < 0 ? text : text.slice(0, slash));
  if (!address) return undefined;
  const max = address.length * 8;
  if (slash < 0) return { address, bits: max };
  const bitsText = text.slice(slash + 1);
  if (!/^(0|[1-9][0-9]{0,2})$/.test(bitsText) || Number(bitsText) > max) return undefined;
  return { address, bits: Number(bitsText) };
}

/** Whether the address `text` lies in `range` (IPv4-mapped IPv6 counts as IPv4). */
export function inCidr(text: string, range: Cidr): boolean {
  const parsed = parseIp(text);
  if (!parsed) return false;
  const address = unmapIpv4(parsed);
  const base = unmapIpv4(range.address);
  const bits = range.bits - (range.address.length - base.length) * 8;
  if (address.length !== base.length || bits < 0) return false;
  for (let i = 0; i < bits; i++) {
    const mask = 0x80 >> (i % 8);
    if ((address[i >> 3] & mask) !== (base[i >> 3] & mask)) return false;
  }
  return true;
}

/** An address in its plain text form: an IPv4-mapped IPv6 address as IPv4 (`::ffff:a09:809` is `10.9.8.9`); anything not an address as it is. */
export function plainAddress(text: string): string {
  const bytes = parseIp(text);
  return bytes ? formatIp(unmapIpv4(bytes)) : text;
}

/** Whether `text` is a loopback address (127.0.0.0/8, ::1, or IPv4-mapped loopback). */
export function isLoopback(text: string): boolean {
  const bytes = parseIp(text);
  if (!bytes) return false;
  const plain = unmapIpv4(bytes);
  return plain.length === 4 ? plain[0] === 127 : plain.every((b, i) => b === (i === 15 ? 1 : 0));
}
