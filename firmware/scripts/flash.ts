/**
 * `npm run firmware:flash -- --port <serial path or BLE MAC> [--board PUCKJS] [--baud 9600] [--dry-run]`
 * Sends the built bundle with the Espruino CLI and saves it to `.bootrst`, which runs at every boot
 * (even with BTN1 held); the lock, once set, lives in `.boot0`.
 */
import { spawn } from 'node:child_process';
import { relative } from 'node:path';
import { parseArgs } from 'node:util';
import { BOARDS, type BoardId, boardPath, bundlePath } from './boards.js';
import { buildBoard } from './build.js';
import { espruinoCliPath } from './espruino-cli.js';

const BLE_MAC = /^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$/;

/** The exact CLI arguments for flashing `board` through `port`. */
export function flashArguments(board: BoardId, port: string, baud = 9600): string[] {
  const serial = !BLE_MAC.test(port);
  const rel = (p: string) => relative(process.cwd(), p);
  return [
    ...(serial ? ['--no-ble', '-b', String(baud)] : []),
    '--board',
    rel(boardPath(board)),
    '-p',
    serial ? port : port.toUpperCase(),
    '--config',
    'SAVE_ON_SEND=2',
    rel(bundlePath(board)),
  ];
}

const USAGE =
  'usage: npm run firmware:flash -- --port <serial path | BLE MAC> [--board PUCKJS|MDBT42Q|NRF52840DK] [--baud 9600] [--dry-run]';

function options() {
  return parseArgs({
    options: {
      port: { type: 'string' },
      board: { type: 'string', default: 'PUCKJS' },
      baud: { type: 'string', default: '9600' },
      'dry-run': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  }).values;
}

async function main(): Promise<number> {
  let values: ReturnType<typeof options>;
  try {
    values = options();
  } catch (err) {
    // An unknown or malformed option: one line and the usage, not a stack trace.
    console.error(`${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  const board = values.board.toUpperCase() as BoardId;
  if (values.help || !values.port || !BOARDS.includes(board)) {
    console.error(USAGE);
    return values.help ? 0 : 2;
  }
  const args = flashArguments(board, values.port, Number(values.baud));
  const shown = ['npx', 'espruino', ...args]
    .map((a) => (/[\s"']/.test(a) ? JSON.stringify(a) : a))
    .join(' ');
  if (values['dry-run']) {
    console.log(shown);
    return 0;
  }
  await buildBoard(board);
  console.log(shown);
  const child = spawn(process.execPath, [espruinoCliPath(), ...args], {
    stdio: ['inherit', 'pipe', 'pipe'],
  });
  let output = '';
  for (const stream of [child.stdout, child.stderr]) {
    stream.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      process.stdout.write(chunk);
    });
  }
  const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? 1)));
  // The CLI exits 0 on a failed connection: only "Upload Complete" counts as success.
  if (code !== 0 || !output.includes('Upload Complete')) {
    console.error('\nflashing failed: the Espruino CLI did not report "Upload Complete"');
    return 1;
  }
  return 0;
}

if (import.meta.url === `file://${process.argv[1]}`) process.exitCode = await main();
