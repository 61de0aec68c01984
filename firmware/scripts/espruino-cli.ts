import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { promisify } from 'node:util';
import { type BoardId, FIRMWARE_DIR, boardPath } from './boards.js';

const run = promisify(execFile);

/** Path of the Espruino CLI (npm package `espruino`) this repository pins. */
export function espruinoCliPath(): string {
  return createRequire(import.meta.url).resolve('espruino/bin/espruino-cli.js');
}

// The CLI exits 0 even when it failed (docs/firmware notes): these lines in its output mean failure.
const FAILURE = /Error parsing|not found|Unable to connect|ERROR/i;

/**
 * Run the bundle through the Espruino CLI offline: `--board` names our board file (so crypto and
 * Storage count as built in and nothing is fetched), `-m` is its offline Esprima minifier, and
 * MODULE_URL points at a local folder so a missing module can never reach the network.
 */
export async function runEspruinoCli(board: BoardId, input: string, output: string): Promise<void> {
  const args = [
    espruinoCliPath(),
    '--board',
    boardPath(board),
    '--config',
    `MODULE_URL=${FIRMWARE_DIR}boards`,
    '-m',
    input,
    '-o',
    output,
  ];
  const { stdout, stderr } = await run(process.execPath, args, { timeout: 60_000 });
  const text = `${stdout}\n${stderr}`;
  const bad = text.split('\n').filter((l) => FAILURE.test(l));
  if (bad.length)
    throw new Error(`Espruino CLI reported a problem for ${board}:\n  ${bad.join('\n  ')}`);
}
