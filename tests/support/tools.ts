/**
 * Tests that need an outside tool (tshark, haproxy, a TFTP peer, Chromium,
 * GlusterFS...). Where the tool is missing the test is *ignored* (counted as
 * ignored by Deno, with one line naming the tool and its install command);
 * under CI (CI=true) it is never ignored: it runs and fails on the missing
 * tool, so CI cannot pass without it.
 *
 *   Deno.test({ name: "...", ...needs("tshark"), fn: async () => { ... } });
 */

/** Each outside tool: the command that proves it is there, and how to install it. */
export const TOOLS: Record<string, { probe: string[]; install: string }> = {
  tshark: { probe: ["tshark", "--version"], install: "apt-get install tshark" },
  haproxy: { probe: ["haproxy", "-v"], install: "apt-get install haproxy" },
  "tftp-hpa": { probe: ["sh", "-c", "command -v tftp"], install: "apt-get install tftp-hpa" },
  "tftpd-hpa": {
    probe: ["test", "-x", "/usr/sbin/in.tftpd"],
    install: "apt-get install tftpd-hpa",
  },
  atftp: { probe: ["sh", "-c", "command -v atftp"], install: "apt-get install atftp" },
  atftpd: {
    probe: [
      "sh",
      "-c",
      'for f in "$ATFTPD" .ci/cache/atftpd/usr/sbin/atftpd /usr/sbin/atftpd; do test -x "$f" && exit 0; done; exit 1',
    ],
    install:
      "apt-get download atftpd && dpkg-deb -x atftpd_*.deb .ci/cache/atftpd (as .ci/run does)",
  },
  busybox: { probe: ["sh", "-c", "command -v busybox"], install: "apt-get install busybox" },
  curl: { probe: ["curl", "--version"], install: "apt-get install curl" },
  wget: { probe: ["wget", "--version"], install: "apt-get install wget" },
  openssl: { probe: ["openssl", "version"], install: "apt-get install openssl" },
  prlimit: { probe: ["prlimit", "--version"], install: "apt-get install util-linux" },
  socat: { probe: ["socat", "-V"], install: "apt-get install socat" },
  nginx: { probe: ["sh", "-c", "command -v nginx"], install: "apt-get install nginx-light" },
  python3: { probe: ["python3", "--version"], install: "apt-get install python3" },
  jq: { probe: ["jq", "--version"], install: "apt-get install jq" },
  strace: { probe: ["strace", "-V"], install: "apt-get install strace" },
  script: { probe: ["sh", "-c", "command -v script"], install: "apt-get install bsdutils" },
  chromium: { probe: ["sh", "-c", "command -v chromium"], install: "apt-get install chromium" },
  "raw-sockets": {
    probe: [
      "python3",
      "-c",
      "import socket; socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)",
    ],
    install: "run as root with python3 (a raw socket forges a datagram's source)",
  },
  "fuse3-dev": {
    probe: ["sh", "-c", "command -v cc && pkg-config --exists fuse3 && test -e /dev/fuse"],
    install: "apt-get install gcc pkg-config libfuse3-dev (as root, with /dev/fuse)",
  },
  glusterfs: {
    probe: ["sh", "-c", "command -v glusterd && command -v mount.glusterfs && test -e /dev/fuse"],
    install: "apt-get install glusterfs-server glusterfs-client (as root, with /dev/fuse)",
  },
};

const found = new Map<string, boolean>();

/** Whether `tool` runs here (probed once). */
export function hasTool(tool: string): boolean {
  let ok = found.get(tool);
  if (ok === undefined) {
    const known = TOOLS[tool];
    if (!known) throw new Error(`tests/support/tools.ts: unknown tool ${tool}: add it to TOOLS`);
    try {
      const [cmd, ...args] = known.probe;
      ok = new Deno.Command(cmd, { args, stdout: "null", stderr: "null" }).outputSync().success;
    } catch {
      ok = false;
    }
    found.set(tool, ok);
  }
  return ok;
}

/** Whether this run is CI's, where a missing tool fails instead of being ignored. */
export const IN_CI = Deno.permissions.querySync({ name: "env", variable: "CI" }).state ===
    "granted" && Deno.env.get("CI") === "true";

const noted = new Set<string>();

/**
 * Test options for a test that needs `tools`: `{ ignore: true }` where one
 * is missing (noting it once on stderr), except under CI.
 */
export function needs(...tools: string[]): { ignore: boolean } {
  const missing = tools.filter((t) => !hasTool(t));
  if (missing.length === 0 || IN_CI) return { ignore: false };
  for (const t of missing) {
    if (noted.has(t)) continue;
    noted.add(t);
    console.error(`ignored: tests that need ${t} (install: ${TOOLS[t].install})`);
  }
  return { ignore: true };
}

/** Throws, naming the install command, when a tool the test needs is missing (CI's failure). */
export function assertTools(...tools: string[]): void {
  const missing = tools.filter((t) => !hasTool(t));
  if (missing.length > 0) {
    throw new Error(
      `missing: ${missing.map((t) => `${t} (install: ${TOOLS[t].install})`).join(", ")}`,
    );
  }
}
