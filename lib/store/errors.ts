/**
 * Errors that carry an fsd/1 error code.
 *
 * `ProtocolError` is raised on our side: the peer broke a rule or a request
 * cannot be served, and the code is what we send back in an ERR packet.
 * `PeerError` is an ERR packet the peer sent us.
 */

/** Error codes, as in TFTP (RFC 1350). */
export const ErrorCode = {
  OTHER: 0,
  NOT_FOUND: 1,
  ACCESS_VIOLATION: 2,
  DISK_FULL: 3,
  ILLEGAL_OPERATION: 4,
  UNKNOWN_TRANSFER: 5,
  FILE_EXISTS: 6,
  NO_SUCH_USER: 7,
  /** The options extension: an option out of range or malformed (RFC 2347's code 8). */
  OPTION_REFUSED: 8,
} as const;
export type ErrorCode = typeof ErrorCode[keyof typeof ErrorCode];

/** An error that carries an fsd/1 error code. */
abstract class CodedError extends Error {
  readonly code: number;
  constructor(code: number, message: string) {
    super(message);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A rule broken or a request refused; `code` goes into the ERR packet we send. */
export class ProtocolError extends CodedError {}

/** The peer sent ERR `code` with `message`. */
export class PeerError extends CodedError {}

/**
 * The server answered our OPT with ERR 4 (it does not speak the options
 * extension) before any data moved: retrying in plain fsd/1 is safe.
 */
export class OptionsRefusedError extends PeerError {}
