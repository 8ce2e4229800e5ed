/**
 * Errors the operator sees: one line that says what is wrong and what to do, and an exit code a
 * script can branch on. README.md ("Exit codes") lists them.
 */
export const EXIT = {
  ok: 0,
  /** anything unexpected: an I/O error, an AWS call that failed */
  failure: 1,
  /** the command line is wrong: an unknown option, an invalid address, TTL or port */
  usage: 2,
  /** the never-block guard refused the target (allowlist, protected network, special range) */
  refused: 3,
  /** what was asked for does not exist: an unknown stack, an address that is not blocked */
  notFound: 4,
  /** AWS credentials or Region missing */
  credentials: 5,
  /** the agent or the pipeline is not healthy (status) */
  unhealthy: 6,
  /** not permitted to change this host's state: not root, not in the control socket's group */
  permission: 7,
} as const;

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT.failure,
  ) {
    super(message);
    this.name = 'CliError';
  }
}
