/** Exit codes scripts can rely on (README "Exit codes"). */
export const EXIT = {
  ok: 0,
  /** A bug: something failed that no input should make fail. */
  internal: 1,
  /** Bad arguments, unreadable or invalid key / CA / sealed file, wrong key for the sealed file. */
  usage: 2,
  /** The server answered 4xx: it understood the request and refused it. */
  refused: 3,
  /** Unreachable, TLS failure (e.g. certificate not trusted), timeout, 5xx or an unexpected answer. */
  unavailable: 4,
} as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/**
 * A failure the CLI reports and exits with. Messages are written for the operator and never
 * carry a secret: no key material, no token, only names of files and options.
 */
export class CliError extends Error {
  constructor(
    readonly exitCode: ExitCode,
    message: string,
    /** A stable machine-readable code: the server's error code, or one of ours. */
    readonly code: string,
    /** The HTTP status when the server answered. */
    readonly status?: number,
  ) {
    super(message);
  }
}

export const usageError = (message: string, code = 'USAGE') =>
  new CliError(EXIT.usage, message, code);

/** An operator's value in a message: quoted, control characters escaped, long ones cut short. */
export const quoted = (value: string): string =>
  JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
