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

const USAGE = `usage: smartbeacon-provision (--port <serial path | BLE MAC> | --simulate)
         --police <https://host:9443> --ca <ca.crt> --username <officer>
         --address "<home address>" --case <case reference>
         --authority-key <authority.pub> --out <dir>
         [--tx <dBm>] [--cadence <s>] [--no-enable] [--yes] [--json]

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

export async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
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
      },
    }));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const missing = ['police', 'ca', 'username', 'address', 'case', 'authority-key', 'out'].filter(
    (k) => !values[k as keyof typeof values],
  );
  if (missing.length || values.simulate === Boolean(values.port)) {
    process.stderr.write(
      `${missing.length ? `missing: --${missing.join(', --')}` : 'give exactly one of --port and --simulate'}\n\n${USAGE}`,
    );
    return 2;
  }
  if (!values.yes) {
    process.stderr.write(
      `Confirm these checks, then run again with --yes:\n${MANUAL_CHECKS.map((c) => `  - ${c}`).join('\n')}\n`,
    );
    return 2;
  }
  const say = (text: string) => void process.stderr.write(`${text}\n`);
  let console: BeaconConsole | undefined;
  try {
    const ca = readFileSync(values.ca as string, 'utf8');
    const authorityPublicKey = readFileSync(values['authority-key'] as string, 'utf8');
    const police = await PoliceClient.signIn(
      values.police as string,
      ca,
      values.username as string,
      await readPassword(),
    );
    console = values.simulate
      ? await simulatedConsole()
      : await EspruinoConsole.open(values.port as string);
    const result = await provisionBeacon({
      console,
      police,
      authorityPublicKey,
      address: values.address as string,
      caseRef: values.case as string,
      outDir: values.out as string,
      txPower: Number(values.tx),
      cadenceSeconds: Number(values.cadence),
      enable: !values['no-enable'],
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
