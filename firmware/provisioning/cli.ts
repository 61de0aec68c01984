/**
 * `smartbeacon-provision` (npm run provision --): the officer's tool at the door. Connects to the
 * beacon (serial path or Bluetooth MAC, or --simulate for the firmware emulation), provisions it,
 * verifies it, seals its key for the health authority, registers it with the police backend and
 * locks it. The officer's password comes from POLICE_PASSWORD or standard input.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { EmulatedConsole, EspruinoConsole, type BeaconConsole } from './connection.js';
import { PoliceClient } from './police-client.js';
import { MANUAL_CHECKS, provisionBeacon } from './provision.js';
import { MIN_VALID_TIME, validateProvision } from '../src/config.js';

export const USAGE = `usage: smartbeacon-provision (--port <serial path | BLE MAC> | --simulate)
         --police <https://host:9443> --ca <ca.crt> --username <officer>
         --address "<home address>" --case <case reference>
         --authority-key <authority.pub> --out <dir>
         [--tx <dBm>] [--cadence <s>] [--no-enable] [--yes] [--json]

  --tx        radio power in dBm: -40, -20, -16, -12, -8, -4, 0 or 4 (default 0)
  --cadence   seconds between tokens, 5 to 3600 (default 60)
  --yes       the manual checks below were done (otherwise the tool asks)
  password    POLICE_PASSWORD, or typed on standard input

Checks no tool can make, which the officer confirms:
${MANUAL_CHECKS.map((c) => `  - ${c}`).join('\n')}
`;

async function readPassword(): Promise<string> {
  if (process.env.POLICE_PASSWORD) return process.env.POLICE_PASSWORD;
  let text = '';
  for await (const chunk of process.stdin) text += String(chunk);
  return text.trim();
}

async function simulatedConsole(): Promise<BeaconConsole> {
  // A Puck.js in the emulation with the built bundle, on a clock that follows real time.
  const { readFileSync: read } = await import('node:fs');
  const { EspruinoDevice, VirtualClock } = await import('../emulator/index.js');
  const { buildBoard } = await import('../scripts/build.js');
  const { path } = await buildBoard('PUCKJS');
  const clock = new VirtualClock(Date.now());
  const device = new EspruinoDevice({ clock, crypto: { aes: true, sha256: true }, battery: 95 });
  device.install(read(path, 'utf8'));
  return new EmulatedConsole(device, (ms) => clock.advance(ms));
}

/** A command line that cannot run: one line for the officer, exit code 2. */
export class ProvisionUsageError extends Error {
  constructor(message: string) {
    // Sixteen or more hex digits in a row could be part of a key typed in the wrong place.
    super(message.replace(/[0-9a-f]{16,}/gi, '(not shown: it may be a key)'));
  }
}

export interface ProvisionArgs {
  readonly port: string | undefined;
  readonly simulate: boolean;
  readonly police: string;
  readonly ca: string;
  readonly username: string;
  readonly address: string;
  readonly caseRef: string;
  readonly authorityKey: string;
  readonly out: string;
  readonly txPower: number;
  readonly cadenceSeconds: number;
  readonly enable: boolean;
  readonly confirmed: boolean;
  readonly json: boolean;
}

const OPTIONS = {
  port: { type: 'string' },
  simulate: { type: 'boolean', default: false },
  police: { type: 'string' },
  ca: { type: 'string' },
  username: { type: 'string' },
  address: { type: 'string' },
  case: { type: 'string' },
  'authority-key': { type: 'string' },
  out: { type: 'string' },
  tx: { type: 'string', default: '0' },
  cadence: { type: 'string', default: '60' },
  'no-enable': { type: 'boolean', default: false },
  yes: { type: 'boolean', default: false },
  json: { type: 'boolean', default: false },
  help: { type: 'boolean', default: false },
} as const;

const REQUIRED = ['police', 'ca', 'username', 'address', 'case', 'authority-key', 'out'] as const;

/** A number as the beacon's own check reads it: only plain decimal integers, e.g. -4 or 60. */
function integerOption(name: string, raw: string): number {
  if (!/^-?\d{1,6}$/.test(raw.trim()))
    throw new ProvisionUsageError(
      `--${name} must be a whole number, got ${JSON.stringify(raw.slice(0, 20))}`,
    );
  return Number(raw.trim());
}

/**
 * Parse and check the command line before anything touches a beacon: "help", or the options;
 * throws ProvisionUsageError with one line saying what is wrong.
 */
export function parseProvisionArgs(argv: readonly string[]): 'help' | ProvisionArgs {
  let values;
  try {
    ({ values } = parseArgs({ args: [...argv], options: OPTIONS, strict: true }));
  } catch (err) {
    throw new ProvisionUsageError((err as Error).message.replace(/\s*\n\s*/g, ' '));
  }
  if (values.help) return 'help';
  const missing = REQUIRED.filter((k) => !values[k]?.trim());
  if (missing.length) throw new ProvisionUsageError(`missing: --${missing.join(', --')}`);
  if (values.simulate === Boolean(values.port))
    throw new ProvisionUsageError('give exactly one of --port and --simulate');
  const txPower = integerOption('tx', values.tx);
  const cadenceSeconds = integerOption('cadence', values.cadence);
  // The beacon's own check (firmware/src/config.ts), run first so a typo fails before the door.
  const checked = validateProvision({
    id: 'SB-0',
    key: '00'.repeat(32),
    time: MIN_VALID_TIME,
    tx: txPower,
    cadence: cadenceSeconds,
  });
  if ('error' in checked)
    throw new ProvisionUsageError(
      checked.error === 'BAD_TX_POWER'
        ? `--tx must be one of ${TX_POWERS_TEXT} (dBm)`
        : '--cadence must be a whole number of seconds from 5 to 3600',
    );
  return {
    port: values.port,
    simulate: values.simulate,
    police: values.police as string,
    ca: values.ca as string,
    username: values.username as string,
    address: values.address as string,
    caseRef: values.case as string,
    authorityKey: values['authority-key'] as string,
    out: values.out as string,
    txPower,
    cadenceSeconds,
    enable: !values['no-enable'],
    confirmed: values.yes,
    json: values.json,
  };
}

/** The radio powers a Puck.js takes, as the usage and errors print them. */
const TX_POWERS_TEXT = '-40, -20, -16, -12, -8, -4, 0, 4';

export async function main(argv: string[]): Promise<number> {
  let values: ProvisionArgs | 'help';
  try {
    values = parseProvisionArgs(argv);
  } catch (err) {
    if (!(err instanceof ProvisionUsageError)) throw err;
    process.stderr.write(
      `smartbeacon-provision: ${err.message}\n(see smartbeacon-provision --help)\n`,
    );
    return 2;
  }
  if (values === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  if (!values.confirmed) {
    process.stderr.write(
      `smartbeacon-provision: the manual checks are not confirmed; do them, then run again with --yes:\n${MANUAL_CHECKS.map((c) => `  - ${c}`).join('\n')}\n`,
    );
    return 2;
  }
  const say = (text: string) => void process.stderr.write(`${text}\n`);
  let console: BeaconConsole | undefined;
  try {
    const ca = readFileSync(values.ca, 'utf8');
    const authorityPublicKey = readFileSync(values.authorityKey, 'utf8');
    const police = await PoliceClient.signIn(
      values.police,
      ca,
      values.username,
      await readPassword(),
    );
    console = values.simulate
      ? await simulatedConsole()
      : await EspruinoConsole.open(values.port as string);
    const result = await provisionBeacon({
      console,
      police,
      authorityPublicKey,
      address: values.address,
      caseRef: values.caseRef,
      outDir: values.out,
      txPower: values.txPower,
      cadenceSeconds: values.cadenceSeconds,
      enable: values.enable,
      manualChecksConfirmed: true,
      progress: (step, state, detail) =>
        say(
          `${state === 'start' ? '…' : state === 'done' ? '✓' : '✗'} ${step}${detail ? `: ${detail}` : ''}`,
        ),
    });
    if (values.json) process.stdout.write(`${JSON.stringify(result)}\n`);
    else
      say(
        `\nBeacon ${result.beaconId} is provisioned, registered and locked.\nGive ${result.sealedKeyFile} to the health authority (it opens only with their key).`,
      );
    return 0;
  } catch (err) {
    say(
      `\nprovisioning stopped: ${(err as Error).message}\nThe beacon was not locked and can be provisioned again.`,
    );
    return 1;
  } finally {
    await console?.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`)
  process.exitCode = await main(process.argv.slice(2));
