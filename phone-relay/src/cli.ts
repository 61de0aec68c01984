#!/usr/bin/env node
/**
 * smartbeacon-relay: the phone relay on a Linux box with a Bluetooth adapter (or, with --dummy,
 * an install that is not quarantined). Exit codes: 0 ok, 2 usage, 1 runtime failure.
 */
import { readFileSync, realpathSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { BleUnavailableError, RelayError } from './errors.js';
import { readKeyFile } from './keys.js';
import { DEFAULT_INTERVAL_MS, PhoneRelay, STATUS_FILE } from './relay.js';
import { openBleSource } from './sources/ble.js';
import { type RelayStatus, formatStatus } from './status.js';
import { DEFAULT_TIMEOUT_MS, httpsTransport, parsePin } from './transport.js';

export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

export const USAGE = `usage: smartbeacon-relay --server <url> --ca <file> (--key-file <file> | --dummy) [options]
       smartbeacon-relay --status [--state-dir <dir>] [--json]

Relays SmartBeacon presence: hears the beacon's BLE frames, reassembles and buffers its tokens,
and every few minutes sends them with SK_T_PAST to the app backend (POST /v1/presence). An
install that is not quarantined runs with --dummy: requests of the same size, to the same
endpoint, at the same cadence, with a random key of its own and no tokens.

  --server <url>        the app backend's public listener, e.g. https://app.example.org:8443
  --ca <file>           the deployment CA certificate (PEM) the server's certificate must chain to
  --pin <pin>           also require the server's key to match: sha256/<base64> of its public
                        key (SPKI) or of its certificate; repeat to allow several (key rotation)
  --key-file <file>     SK_T_PAST, as 64 hex digits or 32 raw bytes (quarantined mode)
  --dummy               not quarantined: dummy requests only (a random key kept in --state-dir)
  --state-dir <dir>     token buffer, dummy key and status (default ~/.smartbeacon-relay)
  --source <ble>        where frames come from: ble (default), real scanning through
                        @abandonware/noble; needs an adapter and, unless root,
                        sudo setcap cap_net_raw+eip $(eval readlink -f $(which node))
  --interval <seconds>  mean time between uploads, 60-86400 (default ${DEFAULT_INTERVAL_MS / 1000}); each one
                        is drawn from ±10 % of it
  --company-id <id>     the beacons' manufacturer company ID, e.g. 0xFFFF (the default)
  --timeout <seconds>   give up on a request after this long, 1-300 (default ${DEFAULT_TIMEOUT_MS / 1000})
  --once                one upload cycle now with what is buffered, then exit (no scanning)
  --status              print the status the relay last wrote to --state-dir, then exit
  --json                with --status or --once: print JSON
  -h, --help            this help

The buffer keeps at most 1,440 tokens (24 h at one a minute), dropping the oldest beyond that;
a token leaves it only when the app backend has answered 202 for the request carrying it.

exit codes:
  0  ok (also --help, --status, and --once when the server answered 202)
  1  runtime failure: Bluetooth unavailable, state directory unusable, --once not answered 202
  2  usage: bad or missing arguments, unreadable CA, key or pin`;

const OPTIONS = {
  server: { type: 'string' },
  ca: { type: 'string' },
  pin: { type: 'string', multiple: true },
  'key-file': { type: 'string' },
  dummy: { type: 'boolean' },
  'state-dir': { type: 'string' },
  source: { type: 'string' },
  interval: { type: 'string' },
  'company-id': { type: 'string' },
  timeout: { type: 'string' },
  once: { type: 'boolean' },
  status: { type: 'boolean' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Sixteen or more hex digits in a row could be part of a key typed in the wrong place. */
const KEY_LIKE = /[0-9a-f]{16,}/gi;

/** A usage problem, said in one line that never repeats what could be a key. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message.replace(KEY_LIKE, '(not shown: it may be a key)'));
  }
}

export interface CliIo {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  /** Resolves when the process is asked to stop (SIGINT, SIGTERM). */
  readonly stopped: Promise<void>;
}

export interface RunConfig {
  readonly server: URL;
  readonly ca: string;
  readonly pins: Buffer[];
  readonly mode: 'quarantined' | 'dummy';
  readonly keyFile: string | undefined;
  readonly stateDir: string;
  readonly intervalMs: number;
  readonly companyId: number;
  readonly timeoutMs: number;
  readonly once: boolean;
  readonly json: boolean;
}

export type Parsed =
  | { readonly kind: 'help' }
  | { readonly kind: 'status'; readonly stateDir: string; readonly json: boolean }
  | { readonly kind: 'run'; readonly config: RunConfig };

function integerIn(name: string, text: string, min: number, max: number): number {
  const v = text.trim();
  const value = /^0x[0-9a-f]+$/i.test(v) ? parseInt(v, 16) : /^\d+$/.test(v) ? Number(v) : NaN;
  if (!Number.isInteger(value) || value < min || value > max)
    throw new UsageError(
      `--${name} must be an integer in [${min}, ${max}], got "${v.slice(0, 20)}"`,
    );
  return value;
}

/** Parse and check the command line; throws UsageError with a message for the person. */
export function parseCommandLine(argv: readonly string[]): Parsed {
  let values;
  try {
    ({ values } = parseArgs({ args: [...argv], options: OPTIONS, strict: true }));
  } catch (err) {
    throw new UsageError((err as Error).message.replace(/\s*\n\s*/g, ' '));
  }
  if (values.help) return { kind: 'help' };
  for (const [k, v] of Object.entries(values))
    if (typeof v === 'string' && v.trim() === '') throw new UsageError(`--${k} must not be empty`);
  const stateDir = values['state-dir'] ?? join(homedir(), '.smartbeacon-relay');
  if (values.status) return { kind: 'status', stateDir, json: values.json ?? false };

  if (!values.server) throw new UsageError('--server is required (the app backend, https://...)');
  let server: URL;
  try {
    server = new URL(values.server);
  } catch {
    throw new UsageError(`--server is not a URL: "${values.server.slice(0, 80)}"`);
  }
  if (server.protocol !== 'https:') throw new UsageError('--server must be an https:// URL');
  if (!values.ca) throw new UsageError('--ca is required (the deployment CA certificate, PEM)');
  if (values['key-file'] && values.dummy)
    throw new UsageError(
      'give either --key-file (quarantined) or --dummy (not quarantined), not both',
    );
  if (!values['key-file'] && !values.dummy)
    throw new UsageError(
      'give --key-file <SK_T_PAST file> (quarantined) or --dummy (not quarantined)',
    );
  const source = values.source ?? 'ble';
  if (source === 'simulated')
    throw new UsageError(
      '--source simulated is for tests and the local simulator (library: SimulatedBleSource); the CLI relays real beacons only (--source ble), since a relay process must never hold a beacon key',
    );
  if (source !== 'ble') throw new UsageError(`--source must be ble, got "${source.slice(0, 20)}"`);
  if (values.dummy && values.source)
    throw new UsageError('--dummy sends dummy requests only and does not scan: drop --source');
  let ca: string;
  try {
    ca = readFileSync(values.ca, 'utf8');
  } catch (err) {
    throw new UsageError(
      `cannot read --ca ${values.ca} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
  if (!ca.includes('-----BEGIN CERTIFICATE-----'))
    throw new UsageError(`--ca ${values.ca} holds no PEM certificate`);
  let pins: Buffer[];
  try {
    pins = (values.pin ?? []).map(parsePin);
  } catch (err) {
    throw new UsageError(`--pin: ${(err as Error).message}`);
  }
  return {
    kind: 'run',
    config: {
      server,
      ca,
      pins,
      mode: values.dummy ? 'dummy' : 'quarantined',
      keyFile: values['key-file'],
      stateDir,
      intervalMs:
        values.interval === undefined
          ? DEFAULT_INTERVAL_MS
          : integerIn('interval', values.interval, 60, 86_400) * 1000,
      companyId:
        values['company-id'] === undefined
          ? 0xffff
          : integerIn('company-id', values['company-id'], 0, 0xffff),
      timeoutMs:
        values.timeout === undefined
          ? DEFAULT_TIMEOUT_MS
          : integerIn('timeout', values.timeout, 1, 300) * 1000,
      once: values.once ?? false,
      json: values.json ?? false,
    },
  };
}

function stamp(): string {
  return new Date()
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, 'Z');
}

function showStatus(stateDir: string, json: boolean, io: CliIo): number {
  let status: RelayStatus;
  try {
    status = JSON.parse(readFileSync(join(stateDir, STATUS_FILE), 'utf8')) as RelayStatus;
  } catch {
    io.err(`no relay status in ${stateDir} (has the relay run with this --state-dir?)`);
    return EXIT.failure;
  }
  if (json) {
    io.out(JSON.stringify(status, null, 2));
    return EXIT.ok;
  }
  // Times relative to now; the file itself may be old (a relay that stopped or crashed).
  const age = Math.round((Date.now() - status.now) / 1000);
  io.out(formatStatus({ ...status, now: Date.now() }));
  io.out(`  (written by the relay ${age} s ago; it rewrites it at each token and upload)`);
  return EXIT.ok;
}

async function run(config: RunConfig, io: CliIo): Promise<number> {
  let skTPast: Uint8Array | undefined;
  if (config.mode === 'quarantined') {
    try {
      skTPast = readKeyFile(config.keyFile as string);
    } catch (err) {
      io.err(`smartbeacon-relay: ${(err as Error).message}`);
      return EXIT.usage;
    }
  }
  const transport = httpsTransport({
    server: config.server,
    ca: config.ca,
    pins: config.pins,
    timeoutMs: config.timeoutMs,
  });
  const log = (line: string) => io.err(`${stamp()} ${line}`);
  const source = config.mode === 'quarantined' && !config.once ? await openBleSource() : undefined;
  const relay = new PhoneRelay({
    stateDir: config.stateDir,
    mode: skTPast ? { kind: 'quarantined', skTPast } : { kind: 'dummy' },
    transport,
    ...(source ? { source } : {}),
    intervalMs: config.intervalMs,
    companyId: config.companyId,
    log,
  });
  if (config.once) {
    const record = await relay.cycle();
    io.out(config.json ? JSON.stringify(relay.status(), null, 2) : formatStatus(relay.status()));
    return record.ok ? EXIT.ok : EXIT.failure;
  }
  await relay.start();
  await io.stopped;
  relay.stop();
  log('relay stopped; buffered tokens are on disk');
  return EXIT.ok;
}

/** The whole CLI, for tests and for the bin entry: returns the exit code. */
export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  let parsed: Parsed;
  try {
    parsed = parseCommandLine(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    io.err(`smartbeacon-relay: ${err.message}\n(see smartbeacon-relay --help)`);
    return EXIT.usage;
  }
  if (parsed.kind === 'help') {
    io.out(USAGE);
    return EXIT.ok;
  }
  if (parsed.kind === 'status') return showStatus(parsed.stateDir, parsed.json, io);
  try {
    return await run(parsed.config, io);
  } catch (err) {
    if (err instanceof BleUnavailableError)
      io.err(`smartbeacon-relay: Bluetooth unavailable (${err.reason}): ${err.message}`);
    else if (err instanceof RelayError) io.err(`smartbeacon-relay: ${err.code}: ${err.message}`);
    else io.err(`smartbeacon-relay: internal error: ${(err as Error)?.message ?? String(err)}`);
    return EXIT.failure;
  }
}

function isMain(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return realpathSync(script) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

if (isMain()) {
  const stopped = new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  const code = await main(process.argv.slice(2), {
    out: (t) => process.stdout.write(`${t}\n`),
    err: (t) => process.stderr.write(`${t}\n`),
    stopped,
  });
  process.exit(code);
}
