/** How a TFTP sender thread knows it is one, without loading the sender (main.ts asks first). */

/** Sender threads are named so; a module run as one calls `sendInWorker()` (lib/tftp/sender.ts). */
export const TFTP_SENDER_NAME = "fsd-tftp-sender";

/** Whether this code runs in a sender thread of a SendPool. */
export function isTftpSender(): boolean {
  return (globalThis as { name?: string }).name === TFTP_SENDER_NAME;
}
