/** The command line: commands, their options, help texts, and parsing with node:util parseArgs. */
import { parseArgs } from 'node:util';
import { usageError } from './errors.js';
import { MAX_ABSENCE_MS } from './time.js';

export const DEFAULT_ISSUER = 'health-authority';
export const DEFAULT_AUDIENCE = 'smartbeacon-app-backend';
export const DEFAULT_TIMEOUT_SECONDS = 15;
const MAX_ABSENCE_HOURS = MAX_ABSENCE_MS / 3_600_000;

const OPTIONS = {
  // global
  json: { type: 'boolean' },
  issuer: { type: 'string' },
  audience: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  // per command
  out: { type: 'string' },
  force: { type: 'boolean' },
  server: { type: 'string' },
  ca: { type: 'string' },
  key: { type: 'string' },
  'sealed-key': { type: 'string' },
  'sk-t-past': { type: 'string' },
  't-past': { type: 'string' },
  window: { type: 'string' },
  'delete-sealed-key': { type: 'boolean' },
  beacon: { type: 'string' },
  timeout: { type: 'string' },
  from: { type: 'string' },
  until: { type: 'string' },
  for: { type: 'string' },
  absence: { type: 'string' },
} as const;

export type OptionName = keyof typeof OPTIONS;
export type Values = ReturnType<typeof parseRaw>['values'];

const GLOBAL: readonly OptionName[] = ['json', 'issuer', 'audience', 'help'];

export type CommandName =
  'keys' | 'register' | 'end' | 'absence' | 'absences' | 'absence-cancel' | 'status';

interface CommandSpec {
  readonly summary: string;
  readonly required: readonly OptionName[];
  readonly optional: readonly OptionName[];
  /** Groups of optional options of which exactly one must be given. */
  readonly oneOf?: readonly (readonly OptionName[])[];
  readonly usage: string;
}

const CONNECTION = `  --server <url>        the app backend's public listener, e.g. https://app.example.org:8443
  --ca <file>           the deployment CA certificate (PEM) the server's certificate must chain to
  --timeout <seconds>   give up after this long (default ${DEFAULT_TIMEOUT_SECONDS})`;

const SIGNING = `  --key <file>          the authority's private key (authority.key from "keys")
  --issuer <iss>        JWT issuer (default "${DEFAULT_ISSUER}"; the server's APP_HA_ISSUER)
  --audience <aud>      JWT audience (default "${DEFAULT_AUDIENCE}"; the server's APP_JWT_AUDIENCE)`;

export const COMMANDS: Readonly<Record<CommandName, CommandSpec>> = {
  keys: {
    summary: "make the authority's ES256 (P-256) signing key pair",
    required: ['out'],
    optional: ['force'],
    usage: `usage: smartbeacon-ha keys --out <dir> [--force] [--json]

Makes the health authority's ES256 (P-256) key pair:
  <dir>/authority.key   private key, PKCS#8 PEM, mode 0600: keep it on this machine only
  <dir>/authority.pub   public key, SPKI PEM: give it to the app backend operators
                        (APP_HA_PUBLIC_KEY) and to the officers' provisioning tool, which seals
                        each beacon's key to it

  --out <dir>           where to write them (created with mode 0700 if missing)
  --force               replace an existing key pair (the old key stops working everywhere, and
                        sealed key files made for it can no longer be opened)`,
  },
  register: {
    summary: 'register a quarantine with the app backend',
    required: ['server', 'ca', 'key', 'sealed-key', 'sk-t-past', 't-past'],
    optional: ['window', 'delete-sealed-key', 'timeout'],
    usage: `usage: smartbeacon-ha register --server <url> --ca <file> --key <file>
         --sealed-key <file> --sk-t-past <hex | @file | -> --t-past <n> [--window <s>]
         [--delete-sealed-key] [--json]

Opens the sealed key file from the officer's provisioning tool with the authority's key (the
beacon ID and SK_BEACON come from it), and sends (SK_T_PAST, T_PAST, beacon ID, SK_BEACON) to
the app backend under a JWT signed for exactly that request. Nothing is written to disk.

${CONNECTION}
${SIGNING}
  --sealed-key <file>   the sealed key file the provisioning tool wrote for this beacon
  --sk-t-past <value>   the person's DP-3T key of the day of infection, 32 bytes as 64 hex digits:
                          @<file>  read from a file (preferred)
                          -        read from standard input
                          <hex>    on the command line (visible to other users in ps and kept
                                   in shell history: avoid)
  --t-past <n>          T_PAST, the DP-3T epoch / day number of the infection (integer)
  --window <seconds>    presence window for this quarantine, 120-86400 (default: the server's)
  --delete-sealed-key   delete the sealed key file once the server has answered 201`,
  },
  end: {
    summary: 'end a quarantine (the app backend deletes its keys)',
    required: ['server', 'ca', 'key', 'beacon'],
    optional: ['timeout'],
    usage: `usage: smartbeacon-ha end --server <url> --ca <file> --key <file> --beacon <id> [--json]

Ends the active quarantine of a beacon: monitoring stops and the app backend deletes
H(SK_T_PAST) and SK_BEACON at once.

${CONNECTION}
${SIGNING}
  --beacon <id>         the beacon ID (as printed by "register"), e.g. SB-0001`,
  },
  absence: {
    summary: 'schedule an authorised absence (alerts suspended from --from to its end)',
    required: ['server', 'ca', 'key', 'beacon', 'from'],
    optional: ['until', 'for', 'timeout'],
    oneOf: [['until', 'for']],
    usage: `usage: smartbeacon-ha absence --server <url> --ca <file> --key <file> --beacon <id>
         --from <time> (--until <time> | --for <duration>) [--json]

Schedules an authorised absence (a test appointment, say) for the active quarantine of a beacon:
no alert while it lasts; the beacon must be back by its end. Only the two times are sent, never
a reason. It may start at most a minute in the past and last at most ${MAX_ABSENCE_HOURS} h.

${CONNECTION}
${SIGNING}
  --beacon <id>         the beacon ID (as printed by "register"), e.g. SB-0001
  --from <time>         when it starts: "now", or ISO 8601 with the UTC offset, e.g.
                        2026-11-30T09:30+01:00 or 2026-11-30T08:30Z
  --until <time>        when it ends (same forms), or
  --for <duration>      how long it lasts: 90m, 2h, 1h30m (h, m, s)`,
  },
  absences: {
    summary: "list a beacon's current and future absences",
    required: ['server', 'ca', 'key', 'beacon'],
    optional: ['timeout'],
    usage: `usage: smartbeacon-ha absences --server <url> --ca <file> --key <file> --beacon <id> [--json]

Lists the current and future absences of the active quarantine of a beacon, cancelled ones
included, whoever scheduled them (health authority or police). Times in this computer's time
zone; --json gives them as Unix milliseconds.

${CONNECTION}
${SIGNING}
  --beacon <id>         the beacon ID, e.g. SB-0001`,
  },
  'absence-cancel': {
    summary: 'cancel an absence (alerts apply again at once)',
    required: ['server', 'ca', 'key', 'beacon', 'absence'],
    optional: ['timeout'],
    usage: `usage: smartbeacon-ha absence-cancel --server <url> --ca <file> --key <file> --beacon <id>
         --absence <id> [--json]

Cancels an absence of the active quarantine of a beacon. Monitoring applies again at once: if the
absence was under way, the beacon must be back now. Cancelling twice is harmless.

${CONNECTION}
${SIGNING}
  --beacon <id>         the beacon ID, e.g. SB-0001
  --absence <id>        the absence ID (a UUID, as printed by "absence" and "absences")`,
  },
  status: {
    summary: 'check that the app backend is reachable and ready; show its certificate',
    required: ['server', 'ca'],
    optional: ['timeout'],
    usage: `usage: smartbeacon-ha status --server <url> --ca <file> [--json]

Asks GET /healthz and GET /readyz over HTTPS, verifying the server against --ca, and shows the
server certificate's subject, issuer and expiry. Exits 0 only when the server is ready.

${CONNECTION}`,
  },
};

export const EXIT_CODES_TEXT = `exit codes:
  0  success
  2  usage or input error: bad arguments, unreadable or invalid key, CA or sealed key file,
     a sealed key file made for another authority key, existing keys without --force,
     an absence that ends before it starts or lasts longer than ${MAX_ABSENCE_HOURS} h
  3  the server refused the request (4xx); its error code is printed, e.g. BEACON_IN_USE
  4  the server could not be reached or answered 5xx: connection refused, timeout,
     certificate not trusted by --ca, not ready
  1  an internal error (a bug)`;

export const MAIN_USAGE = `usage: smartbeacon-ha <command> [options]     (npm run ha -- <command> [options])

The health authority's command line for SmartBeacon: registers and ends quarantines and
schedules authorised absences with the app backend, signed with the authority's own ES256 key.

commands:
${(Object.entries(COMMANDS) as [CommandName, CommandSpec][])
  .map(([name, spec]) => `  ${name.padEnd(16)}${spec.summary}`)
  .join('\n')}

global options:
  --json                print one JSON object on standard output (also on failure)
  --issuer, --audience  JWT iss / aud for the commands that sign (all but keys and status)
  -h, --help            this help; "smartbeacon-ha <command> --help" for a command's options

${EXIT_CODES_TEXT}`;

export type Parsed =
  | { readonly kind: 'help'; readonly text: string }
  | { readonly kind: 'run'; readonly command: CommandName; readonly values: Values };

function parseRaw(argv: readonly string[]) {
  return parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
}

function isCommand(name: string | undefined): name is CommandName {
  return name !== undefined && Object.hasOwn(COMMANDS, name);
}

/** Whether the caller asked for JSON, even when the rest of the command line does not parse. */
export function wantsJson(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  return (end < 0 ? argv : argv.slice(0, end)).includes('--json');
}

/** The command named first, if any, for error reports about a command line that does not parse. */
export function commandOf(argv: readonly string[]): CommandName | undefined {
  const first = argv.find((a) => !a.startsWith('-'));
  return isCommand(first) ? first : undefined;
}

export function parseCommandLine(argv: readonly string[]): Parsed {
  let parsed;
  try {
    parsed = parseRaw(argv);
  } catch (error) {
    throw usageError((error as Error).message.replace(/\s*\n\s*/g, ' '));
  }
  const { values, positionals } = parsed;
  const [first, ...rest] = positionals;
  if (first === 'help') {
    const topic = rest[0];
    if (topic !== undefined && !isCommand(topic))
      throw usageError(`unknown command ${shown(topic)}`);
    return { kind: 'help', text: topic ? helpFor(topic) : MAIN_USAGE };
  }
  if (first === undefined) {
    if (values.help) return { kind: 'help', text: MAIN_USAGE };
    throw usageError(`no command given (${Object.keys(COMMANDS).join(', ')})`);
  }
  if (!isCommand(first)) throw usageError(`unknown command ${shown(first)}`);
  if (values.help) return { kind: 'help', text: helpFor(first) };
  if (rest.length > 0) throw usageError(`unexpected argument ${rest.map(shown).join(' ')}`);
  const spec = COMMANDS[first];
  const allowed = new Set<OptionName>([...GLOBAL, ...spec.required, ...spec.optional]);
  const misplaced = (Object.keys(values) as OptionName[]).filter((k) => !allowed.has(k));
  if (misplaced.length > 0)
    throw usageError(`"${first}" does not take --${misplaced.join(', --')}`);
  const missing = spec.required.filter((k) => values[k] === undefined);
  if (missing.length > 0) throw usageError(`"${first}" needs --${missing.join(', --')}`);
  for (const group of spec.oneOf ?? []) {
    const given = group.filter((k) => values[k] !== undefined);
    if (given.length !== 1)
      throw usageError(
        given.length === 0
          ? `"${first}" needs --${group.join(' or --')}`
          : `"${first}" takes only one of --${given.join(', --')}`,
      );
  }
  for (const k of Object.keys(values) as OptionName[]) {
    const v = values[k];
    if (typeof v === 'string' && v.trim() === '') throw usageError(`--${k} must not be empty`);
  }
  return { kind: 'run', command: first, values };
}

/** A stray argument, quoted, unless it could be a key typed in the wrong place. */
function shown(arg: string): string {
  return /[0-9a-fA-F]{16}/.test(arg) || arg.length > 40
    ? '(not shown: it may be a key)'
    : `"${arg}"`;
}

function helpFor(command: CommandName): string {
  return `${COMMANDS[command].usage}\n\n${EXIT_CODES_TEXT}`;
}
