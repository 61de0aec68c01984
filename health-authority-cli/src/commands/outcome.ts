import type { Values } from '../args.js';
import type { Io } from '../io.js';

/** What a command that ran reports: human text, or one JSON object with --json. */
export interface Outcome {
  readonly exitCode: number;
  /** Fields of the JSON object (ok and command are added by the caller). */
  readonly json: Record<string, unknown>;
  /** Human-readable report for standard output. */
  readonly text: string;
  /** For a non-zero exit: what went wrong, for standard error. */
  readonly error?: string;
}

export interface Context {
  readonly values: Values;
  readonly io: Io;
}
