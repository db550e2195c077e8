/**
 * What names a TLS certificate, apart from the connections (tls.ts), so that
 * a client parses its --pin without loading TLS until it connects: the
 * certificate's DER bytes, its SHA-256 fingerprint as openssl prints it,
 * and a pin read back from that form or SSH's base64.
 */

/** A TLS connect or handshake that failed, or a certificate or pin that is not one: the reason in one line. */
export class TlsError extends Error {
  constructor(message: string, options?: { cause: unknown }) {
    super(message, options);
    this.name = "TlsError";
  }
}

/** The DER bytes of the first certificate in `pem`. */
export function certificateDer(pem: string): Uint8Array {
  const match = /-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+)-----END CERTIFICATE-----/.exec(pem);
  if (!match) throw new TlsError("no PEM certificate found");
  return Uint8Array.from(atob(match[1].replace(/\s+/g, "")), (c) => c.charCodeAt(0));
}

/** SHA-256 of `der`, as `SHA256:` and upper-case hex pairs with colons (openssl's form). */
export async function fingerprint(der: Uint8Array): Promise<string> {
  return formatFingerprint(
    new Uint8Array(await crypto.subtle.digest("SHA-256", new Uint8Array(der))),
  );
}

/** A SHA-256 digest as `SHA256:AB:CD:...`. */
export function formatFingerprint(digest: Uint8Array): string {
  return `SHA256:${
    [...digest].map((b) => b.toString(16).padStart(2, "0").toUpperCase()).join(":")
  }`;
}

/**
 * Reads a pin: `SHA256:` followed by the 32-byte digest in hex (colons
 * optional, any case, as openssl and `fsd serve` print it) or in base64
 * (as SSH prints key fingerprints).
 */
export function parsePin(text: string): Uint8Array {
  const body = /^sha256:(.+)$/i.exec(text.trim())?.[1];
  if (body) {
    const hex = body.replaceAll(":", "");
    if (/^[0-9a-fA-F]{64}$/.test(hex)) {
      return Uint8Array.from(hex.match(/../g)!, (pair) => parseInt(pair, 16));
    }
    if (/^[A-Za-z0-9+/]{43}=?$/.test(body)) {
      const bytes = Uint8Array.from(atob(body.replace(/=?$/, "=")), (c) => c.charCodeAt(0));
      if (bytes.length === 32) return bytes;
    }
  }
  throw new TlsError(`invalid pin: ${text}: expected SHA256: and 64 hex digits`);
}
