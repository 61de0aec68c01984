import { parseArgs } from 'node:util';

/** What `npm start` runs; every speed-up is a setting shown on screen, never a faked code path. */
export interface StartOptions {
  readonly beacons: number;
  readonly scenario: 'leave' | 'stay';
  /** Seconds after the last beacon is set up until the first person leaves home. */
  readonly leaveAfter: number;
  readonly cadence: number;
  readonly upload: number;
  readonly window: number;
  readonly grace: number;
  /** First of four ports (app public, app internal, police officers, police internal); 0 = any free. */
  readonly portBase: number;
  readonly dataDir: string;
  readonly databaseUrl: string | undefined;
  /** Stop once the departure has reached the police backend (tests, CI). */
  readonly exitAfterAlert: boolean;
  /** Give up after this many seconds (0 = run until Ctrl-C). */
  readonly timeout: number;
  readonly plain: boolean;
}

export const HELP = `npm start -- [options]

Runs the whole system on this machine: a development PKI, both backends (embedded PostgreSQL in
.data/, or PostgreSQL with DATABASE_URL), a demo officer, and beacons running the real firmware
bundle in the Espruino emulation, provisioned at the door, registered by the health authority's
CLI, with phone relays sending presence. Then one person leaves home and the alert reaches the
officers' dashboard. Time runs at its real pace: only the cadence, window and grace are shorter
than in production, and they are shown on screen.

  --beacons N        homes with a beacon (default 3, at most 20)
  --scenario S       leave (default): one person leaves home; stay: nobody does
  --leave-after S    seconds from the last installation until the person leaves (default 30)
  --cadence S        the beacons' token cadence, seconds (default 10; production 60; at least 5)
  --upload S         the relays' upload interval, seconds (default 15; production 300)
  --window S         no proof for this long opens a gap (default 45; production 360; at least 10)
  --grace S          then this long before the police are told (default 30; production 1200)
  --port-base N      ports N..N+3: app public, app internal, police officers, police internal
                     (default 8443 → 8443, 8444, 8445, 8446; 0 picks free ones)
  --data-dir D       where keys, certificates and the embedded databases live (default .data)
  --exit-after-alert stop once the alert has reached the police backend
  --timeout S        give up after S seconds (default 0: run until Ctrl-C)
  --plain            print changes line by line instead of redrawing the table
  --help             this text

Environment: DATABASE_URL (PostgreSQL; the app and police backends get their own databases,
<name>_app and <name>_police, created if missing).`;

export class UsageError extends Error {}

export function parseStartOptions(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
): StartOptions | 'help' {
  const { values } = parseArgs({
    args: [...argv],
    strict: true,
    options: {
      beacons: { type: 'string', default: '3' },
      scenario: { type: 'string', default: 'leave' },
      'leave-after': { type: 'string', default: '30' },
      cadence: { type: 'string', default: '10' },
      upload: { type: 'string', default: '15' },
      window: { type: 'string', default: '45' },
      grace: { type: 'string', default: '30' },
      'port-base': { type: 'string', default: '8443' },
      'data-dir': { type: 'string', default: '.data' },
      'exit-after-alert': { type: 'boolean', default: false },
      timeout: { type: 'string', default: '0' },
      plain: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) return 'help';
  const int = (name: string, raw: string, min: number, max: number): number => {
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max)
      throw new UsageError(`--${name} must be an integer in [${min}, ${max}]`);
    return n;
  };
  if (values.scenario !== 'leave' && values.scenario !== 'stay')
    throw new UsageError('--scenario must be leave or stay');
  const o: StartOptions = {
    beacons: int('beacons', values.beacons, 1, 20),
    scenario: values.scenario,
    leaveAfter: int('leave-after', values['leave-after'], 0, 86_400),
    cadence: int('cadence', values.cadence, 5, 3600),
    upload: int('upload', values.upload, 2, 3600),
    window: int('window', values.window, 10, 86_400),
    grace: int('grace', values.grace, 0, 86_400),
    portBase: int('port-base', values['port-base'], 0, 65_532),
    dataDir: values['data-dir'],
    databaseUrl: env.DATABASE_URL || undefined,
    exitAfterAlert: values['exit-after-alert'],
    timeout: int('timeout', values.timeout, 0, 7 * 86_400),
    plain: values.plain,
  };
  // The window must leave room for at least one token and one upload, or nobody is ever present.
  if (o.window <= o.cadence + o.upload)
    throw new UsageError('--window must be longer than --cadence plus --upload');
  return o;
}
