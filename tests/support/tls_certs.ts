/** Test certificates made with openssl for each run: a CA, a server certificate it signed, and an unrelated self-signed one. */

import { assertTools } from "./tools.ts";

export interface TestCertificates {
  dir: string;
  /** The CA's certificate. */
  ca: string;
  /** The server's certificate (signed by the CA, for 127.0.0.1 and localhost) and key. */
  cert: string;
  key: string;
  /** Another self-signed certificate and key, trusted by nobody. */
  otherCert: string;
  otherKey: string;
  /** openssl's SHA-256 fingerprints, as `SHA256:AB:CD:...`. */
  certFingerprint: string;
  otherFingerprint: string;
}

/** Runs openssl in `dir`; tests that call it take `needs("openssl")`. */
async function openssl(dir: string, ...args: string[]): Promise<string> {
  assertTools("openssl");
  const output = await new Deno.Command("openssl", {
    args,
    cwd: dir,
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  if (!output.success) {
    throw new Error(`openssl ${args.join(" ")}: ${new TextDecoder().decode(output.stderr)}`);
  }
  return new TextDecoder().decode(output.stdout);
}

const EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];

/** Makes the certificates in `dir`. */
export async function makeCertificates(dir: string): Promise<TestCertificates> {
  await openssl(
    dir,
    "req",
    "-x509",
    ...EC,
    "-keyout",
    "ca-key.pem",
    "-out",
    "ca.pem",
    "-days",
    "2",
    "-subj",
    "/CN=fsd test CA",
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign",
  );
  await openssl(
    dir,
    "req",
    ...EC,
    "-keyout",
    "key.pem",
    "-out",
    "server.csr",
    "-subj",
    "/CN=localhost",
  );
  await Deno.writeTextFile(
    `${dir}/server.ext`,
    "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
  );
  await openssl(
    dir,
    "x509",
    "-req",
    "-in",
    "server.csr",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca-key.pem",
    "-CAcreateserial",
    "-out",
    "cert.pem",
    "-days",
    "2",
    "-extfile",
    "server.ext",
  );
  await openssl(
    dir,
    "req",
    "-x509",
    ...EC,
    "-keyout",
    "other-key.pem",
    "-out",
    "other.pem",
    "-days",
    "2",
    "-subj",
    "/CN=localhost",
    "-addext",
    "subjectAltName=DNS:localhost,IP:127.0.0.1",
  );
  const fp = async (file: string) =>
    "SHA256:" + (await openssl(dir, "x509", "-in", file, "-noout", "-fingerprint", "-sha256"))
      .trim().split("=")[1];
  return {
    dir,
    ca: `${dir}/ca.pem`,
    cert: `${dir}/cert.pem`,
    key: `${dir}/key.pem`,
    otherCert: `${dir}/other.pem`,
    otherKey: `${dir}/other-key.pem`,
    certFingerprint: await fp("cert.pem"),
    otherFingerprint: await fp("other.pem"),
  };
}
