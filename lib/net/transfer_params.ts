/**
 * How a windowed transfer moves data, in every protocol that has blocks
 * and windows (fsd/1 over TCP, TFTP over UDP): one meaning, one name.
 * A protocol adds its own fields (TFTP: `timeoutMs`).
 */
export interface TransferParams {
  /** Bytes of file data per block; a shorter block ends the file. */
  blockSize: number;
  /** Blocks sent before an acknowledgement is awaited (1: lock-step). */
  windowSize: number;
}
