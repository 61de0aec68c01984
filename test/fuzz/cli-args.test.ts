import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import {
  COMMANDS,
  MAIN_USAGE,
  parseCommandLine as parseHa,
} from '../../health-authority-cli/src/args.js';
import { main as haMain } from '../../health-authority-cli/src/cli.js';
import { CliError, EXIT as HA_EXIT } from '../../health-authority-cli/src/errors.js';
import {
  ProvisionUsageError,
  USAGE as PROVISION_USAGE,
  parseProvisionArgs,
} from '../../firmware/provisioning/cli.js';
import {
  EXIT as RELAY_EXIT,
  USAGE as RELAY_USAGE,
  UsageError as RelayUsageError,
  main as relayMain,
  parseCommandLine as parseRelay,
} from '../../phone-relay/src/cli.js';
import {
  HELP as START_HELP,
  UsageError as StartUsageError,
  parseStartOptions,
} from '../../scripts/start/options.js';
import { fuzzRuns, fuzzSeed } from './runs.js';

/** Every --option a usage text names: the vocabulary the random command lines are made of. */
const optionsIn = (...texts: string[]) => [
  ...new Set(
    texts.flatMap((t) => [...t.matchAll(/--([a-z][a-z0-9-]*)/g)].map((m) => m[1] as string)),
  ),
];

const KEY_HEX = 'ab'.repeat(32);

const value = fc.oneof(
  fc.constantFrom(
    '',
    ' ',
    '-',
    '--',
    '=',
    '0',
    '-1',
    '4',
    '-4',
    '5',
    '60',
    '3600',
    '86401',
    '0x10',
    '1e3',
    'NaN',
    'now',
    '90m',
    'https://localhost:1',
    'http://localhost:1',
    'https://',
    '/nonexistent/file',
    '.',
    'SB-0001',
    KEY_HEX,
    `@/nonexistent/${KEY_HEX}`,
    'help',
  ),
  fc.string({ unit: 'grapheme', maxLength: 30 }),
  fc.integer().map(String),
);

/** A random command line over a CLI's own words: its commands, its options (alone or with =value), values. */
function argv(
  options: readonly string[],
  commands: readonly string[] = [],
): fc.Arbitrary<string[]> {
  const word = fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...options).map((o) => `--${o}`) },
    {
      weight: 1,
      arbitrary: fc.tuple(fc.constantFrom(...options), value).map(([o, v]) => `--${o}=${v}`),
    },
    { weight: 3, arbitrary: value },
    { weight: 1, arbitrary: fc.constantFrom('-h', '-x', '--nope', '--', '-', ...commands) },
  );
  return fc.array(word, { maxLength: 10 });
}

/** A usage error: one line that says what is wrong, never a key the command line carried. */
function assertUsageMessage(message: string, args: readonly string[]): void {
  assert.ok(message.length > 0 && message.length < 400, `message length ${message.length}`);
  assert.ok(!message.includes('\n'), `one line: ${JSON.stringify(message)}`);
  assert.ok(!/\n\s+at /.test(message), 'no stack');
  if (args.some((a) => a.includes(KEY_HEX)))
    assert.ok(!message.includes(KEY_HEX.slice(0, 16)), `echoes a key: ${message}`);
}

const runs = () => fuzzRuns(300);
const settings = () => ({ numRuns: runs(), ...fuzzSeed() });

describe('fuzzing every command line parser', () => {
  describe('health-authority CLI', () => {
    const commands = Object.keys(COMMANDS);
    const words = argv(optionsIn(MAIN_USAGE, ...Object.values(COMMANDS).map((c) => c.usage)), [
      ...commands,
      'help',
    ]);

    it('parses any command line or refuses it with one usage line (exit 2), never echoing a key', () => {
      fc.assert(
        fc.property(words, (args) => {
          try {
            parseHa(args);
          } catch (err) {
            assert.ok(err instanceof CliError, `not a CliError: ${String(err)}`);
            assert.equal(err.exitCode, HA_EXIT.usage);
            assertUsageMessage(err.message, args);
          }
        }),
        settings(),
      );
    });

    it('main() answers every refused command line with exit 2 and a prefixed message, JSON when asked', async () => {
      const refused = words.filter((a) => {
        try {
          parseHa(a);
          return false;
        } catch {
          return true;
        }
      });
      await fc.assert(
        fc.asyncProperty(refused, fc.boolean(), async (args, json) => {
          const line = json ? [...args, '--json'] : args;
          const out: string[] = [];
          const err: string[] = [];
          const code = await haMain(line, {
            stdout: (t) => void out.push(t),
            stderr: (t) => void err.push(t),
            readStdin: () => Promise.resolve(''),
            now: () => Date.now(),
          });
          assert.equal(code, HA_EXIT.usage);
          const first = (err.join('\n').split('\n')[0] ?? '').trim();
          assert.match(first, /^smartbeacon-ha: \S/);
          assert.ok(!/\n\s+at /.test(err.join('\n')), 'no stack');
          if (
            line
              .slice(0, line.indexOf('--') < 0 ? undefined : line.indexOf('--'))
              .includes('--json')
          ) {
            const answer = JSON.parse(out.join('')) as {
              ok: boolean;
              exitCode: number;
              error: string;
            };
            assert.deepEqual(
              [answer.ok, answer.exitCode, typeof answer.error],
              [false, 2, 'string'],
            );
          } else assert.deepEqual(out, []);
        }),
        { numRuns: Math.ceil(runs() / 3), ...fuzzSeed() },
      );
    });
  });

  describe('phone relay CLI', () => {
    const words = argv(optionsIn(RELAY_USAGE));

    it('parses any command line or refuses it with one usage line, never echoing a key', () => {
      fc.assert(
        fc.property(words, (args) => {
          try {
            parseRelay(args);
          } catch (err) {
            assert.ok(err instanceof RelayUsageError, `not a usage error: ${String(err)}`);
            assertUsageMessage(err.message, args);
          }
        }),
        settings(),
      );
    });

    it('main() answers every refused command line with exit 2 and a prefixed message', async () => {
      const refused = words.filter((a) => {
        try {
          parseRelay(a);
          return false;
        } catch {
          return true;
        }
      });
      await fc.assert(
        fc.asyncProperty(refused, async (args) => {
          const out: string[] = [];
          const err: string[] = [];
          const code = await relayMain(args, {
            out: (t) => void out.push(t),
            err: (t) => void err.push(t),
            stopped: Promise.resolve(),
          });
          assert.equal(code, RELAY_EXIT.usage);
          assert.match(err.join('\n').split('\n')[0] ?? '', /^smartbeacon-relay: \S/);
          assert.deepEqual(out, []);
        }),
        { numRuns: Math.ceil(runs() / 3), ...fuzzSeed() },
      );
    });
  });

  describe("officer's provisioning CLI", () => {
    it('parses any command line or refuses it with one usage line; a run always has a radio power and cadence the beacon takes', () => {
      fc.assert(
        fc.property(argv(optionsIn(PROVISION_USAGE)), (args) => {
          let parsed;
          try {
            parsed = parseProvisionArgs(args);
          } catch (err) {
            assert.ok(err instanceof ProvisionUsageError, `not a usage error: ${String(err)}`);
            assertUsageMessage(err.message, args);
            return;
          }
          if (parsed === 'help') return;
          assert.ok(
            [-40, -20, -16, -12, -8, -4, 0, 4].includes(parsed.txPower),
            `tx ${parsed.txPower}`,
          );
          assert.ok(
            Number.isInteger(parsed.cadenceSeconds) &&
              parsed.cadenceSeconds >= 5 &&
              parsed.cadenceSeconds <= 3600,
          );
          assert.notEqual(parsed.simulate, parsed.port !== undefined);
        }),
        settings(),
      );
    });
  });

  describe('npm start options', () => {
    it('parses any command line into settings that can run, or refuses it with a message', () => {
      fc.assert(
        fc.property(argv(optionsIn(START_HELP)), (args) => {
          let o;
          try {
            o = parseStartOptions(args, {});
          } catch (err) {
            const code = (err as { code?: unknown }).code;
            assert.ok(
              err instanceof StartUsageError ||
                (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_')),
              `unexpected ${String(err)}`,
            );
            assert.ok((err as Error).message.split('\n')[0]?.trim(), 'a message');
            return;
          }
          if (o === 'help') return;
          assert.ok(
            o.window > o.cadence + o.upload,
            'the window leaves room for a token and an upload',
          );
          for (const n of [
            o.beacons,
            o.cadence,
            o.upload,
            o.window,
            o.grace,
            o.portBase,
            o.timeout,
          ])
            assert.ok(Number.isInteger(n) && n >= 0);
        }),
        settings(),
      );
    });
  });

  describe('the compiled bins as real processes', function () {
    this.timeout(60_000);
    const bin = (path: string) => fileURLToPath(new URL(`../../${path}`, import.meta.url));
    const run = (path: string, args: readonly string[]) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        const child = execFile(
          process.execPath,
          [bin(path), ...args],
          { timeout: 20_000, env: { ...process.env, POLICE_PASSWORD: '' } },
          (error, stdout, stderr) =>
            resolve({
              code: error ? (typeof error.code === 'number' ? error.code : -1) : 0,
              stdout,
              stderr,
            }),
        );
        child.stdin?.end();
      });

    const cases: [string, string, string[], RegExp][] = [
      [
        'smartbeacon-ha',
        'health-authority-cli/src/cli.js',
        ['register', '--t-past', 'x'],
        /^smartbeacon-ha: /,
      ],
      [
        'smartbeacon-ha',
        'health-authority-cli/src/cli.js',
        ['--no-such-option'],
        /^smartbeacon-ha: /,
      ],
      [
        'smartbeacon-relay',
        'phone-relay/src/cli.js',
        ['--server', 'ftp://x', '--dummy'],
        /^smartbeacon-relay: /,
      ],
      ['smartbeacon-relay', 'phone-relay/src/cli.js', ['--interval'], /^smartbeacon-relay: /],
      [
        'smartbeacon-provision',
        'firmware/provisioning/cli.js',
        ['--simulate', '--tx', 'loud'],
        /^smartbeacon-provision: /,
      ],
      [
        'smartbeacon-provision',
        'firmware/provisioning/cli.js',
        ['--port'],
        /^smartbeacon-provision: /,
      ],
      ['npm start', 'scripts/start.js', ['--beacons', '999'], /^--beacons must be/],
      ['npm start', 'scripts/start.js', ['--no-such-option'], /^Unknown option/],
      ['npm run pki', 'deploy/pki/cli.js', ['init', '--days', 'many'], /^pki: /],
      ['npm run pki', 'deploy/pki/cli.js', ['--no-such-option'], /^pki: /],
      ['deploy setup', 'deploy/setup/cli.js', ['secrets', '--out'], /^setup: /],
      ['npm run sim:false-alarms', 'sim/false-alarms.js', ['--people', 'many'], /must be/],
      ['npm run firmware:flash', 'firmware/scripts/flash.js', ['--no-such-option'], /^Unknown/],
      ['npm run bench', 'bench/run-all.js', ['--no-such-option'], /^Unknown option/],
    ];
    it('audit-verify with no database: exit 2, one line, no empty database made', async () => {
      const dataDir = join(tmpdir(), `sb-audit-${process.pid}-none`);
      const r = await new Promise<{ code: number; stderr: string }>((resolve) =>
        execFile(
          process.execPath,
          [bin('police-backend/src/audit-verify.js')],
          { timeout: 20_000, env: { ...process.env, DATABASE_URL: '', POLICE_DATA_DIR: dataDir } },
          (error, _stdout, stderr) =>
            resolve({ code: typeof error?.code === 'number' ? error.code : 0, stderr }),
        ),
      );
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /^no police database at /);
      assert.equal(existsSync(dataDir), false);
    });
    for (const [name, path, args, first] of cases)
      it(`${name} ${args.join(' ')}: exit 2, the error on the first line, no stack trace`, async () => {
        const r = await run(path, args);
        assert.equal(r.code, 2, r.stderr);
        assert.match(r.stderr.split('\n')[0] ?? '', first);
        assert.ok(!/^\s+at /m.test(r.stderr) && !r.stderr.includes('node:internal'), r.stderr);
        assert.equal(r.stdout, '');
      });
  });
});
