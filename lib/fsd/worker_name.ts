/** How a `serve --workers` worker knows it is one, without loading the server (main.ts asks first). */

/** Workers are named with this prefix; a module run as one calls `serveInWorker()`. */
export const SERVE_WORKER_NAME = "fsd-serve-worker";

/** Whether this code runs in a worker of a ServerPool. */
export function isServeWorker(): boolean {
  const name = (globalThis as { name?: string }).name;
  return typeof name === "string" && name.startsWith(SERVE_WORKER_NAME);
}
