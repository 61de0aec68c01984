#!/usr/bin/env node
/**
 * `smartbeacon-ha <command> [options]` (npm run ha -- …): the health authority's command line.
 * `--help` lists the commands; README.md has the exit codes and examples.
 */
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { type CommandName, commandOf, parseCommandLine, wantsJson } from './args.js';
import { absenceCancelCommand, absenceCommand, absencesCommand } from './commands/absences.js';
import { endCommand } from './commands/end.js';
import { keysCommand } from './commands/keys.js';
import type { Context, Outcome } from './commands/outcome.js';
import { registerCommand } from './commands/register.js';
import { statusCommand } from './commands/status.js';
import { CliError, EXIT } from './errors.js';
import { type Io, processIo } from './io.js';

const RUN: Readonly<Record<CommandName, (context: Context) => Promise<Outcome>>> = {
  keys: keysCommand,
  register: registerCommand,
  end: endCommand,
  absence: absenceCommand,
  absences: absencesCommand,
  'absence-cancel': absenceCancelCommand,
  status: statusCommand,
};

const PREFIX = 'smartbeacon-ha';

/** Run one command line; returns the exit code. Output goes through `io` only. */
export async function main(
  argv: readonly string[],
  ioOverrides: Partial<Io> = {},
): Promise<number> {
  const io: Io = { ...processIo, ...ioOverrides };
  const json = wantsJson(argv);
  let command: CommandName | undefined = commandOf(argv);
  try {
    const parsed = parseCommandLine(argv);
    if (parsed.kind === 'help') {
      io.stdout(parsed.text);
      return EXIT.ok;
    }
    command = parsed.command;
    const outcome = await RUN[command]({ values: parsed.values, io });
    const ok = outcome.exitCode === EXIT.ok;
    if (json)
      io.stdout(JSON.stringify({ ok, command, exitCode: outcome.exitCode, ...outcome.json }));
    else io.stdout(outcome.text);
    if (!ok && outcome.error) io.stderr(`${PREFIX}: ${outcome.error}`);
    return outcome.exitCode;
  } catch (error) {
    const failure =
      error instanceof CliError
        ? error
        : // Not expected for any input: report it without a stack (which could quote values).
          new CliError(
            EXIT.internal,
            `internal error: ${error instanceof Error ? `${error.name}: ${error.message}` : 'unknown'}`,
            'INTERNAL',
          );
    const help =
      failure.exitCode === EXIT.usage && failure.code === 'USAGE'
        ? `\n(run "${PREFIX} ${command ?? ''}${command ? ' ' : ''}--help" for the options)`
        : '';
    io.stderr(`${PREFIX}: ${failure.message}${help}`);
    if (json)
      io.stdout(
        JSON.stringify({
          ok: false,
          command: command ?? null,
          exitCode: failure.exitCode,
          error: failure.code,
          ...(failure.status === undefined ? {} : { status: failure.status }),
          message: failure.message,
        }),
      );
    return failure.exitCode;
  }
}

/** True when this file is the program being run: directly, or through the npm bin symlink. */
function invokedDirectly(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  if (import.meta.url === `file://${script}`) return true;
  try {
    return import.meta.url === pathToFileURL(realpathSync(script)).href;
  } catch {
    return false;
  }
}

if (invokedDirectly()) process.exitCode = await main(process.argv.slice(2));
