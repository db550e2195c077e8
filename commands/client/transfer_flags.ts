/**
 * What `fsd get` and `fsd put` declare alike, once: the flags after their
 * own (verbosity, --jobs, the transfer's, connecting, --tftp), the help's
 * TFTP and HTTP groups, and the exit statuses.
 */

import { CLIENT_FLAGS, JOBS_FLAG, TRANSFER_FLAGS } from "./client_flags.ts";
import { VERBOSITY_FLAGS } from "./report.ts";
import { HTTP_CLIENT_HEADING, TFTP_CLIENT_HEADING, TFTP_FLAG } from "./sides.ts";

/** The flags get and put share, after their own. */
export const TRANSFER_JOB_FLAGS = {
  ...VERBOSITY_FLAGS,
  ...JOBS_FLAG,
  ...TRANSFER_FLAGS,
  ...CLIENT_FLAGS,
  ...TFTP_FLAG,
} as const;

/** The help's groups of get and put: what TFTP and HTTP take. */
export const TRANSFER_GROUPS = { tftp: TFTP_CLIENT_HEADING, http: HTTP_CLIENT_HEADING };

/** The exit statuses of get and put. */
export const TRANSFER_EXIT_STATUS =
  `Exit status: 0 when every file made it, 1 when any did not (listed on
stderr), 2 for usage errors, 128+N when stopped by signal N (SIGINT 130,
SIGTERM 143, SIGHUP 129).`;
