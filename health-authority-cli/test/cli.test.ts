import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  randomUUID,
  sign,
  verify,
} from 'node:crypto';
import { chmod, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { createServer as createHttpsServer } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Database, openDatabase } from '../../backend-kit/db.js';
import { openBeaconKey, openDerivedKeys } from '../../app-backend/src/kek.js';
import { deriveKeyMaterial } from '../../protocol/token/keys.js';
import {
  type Harness,
  PoliceStub,
  authorityKeys,
  startBackend,
} from '../../app-backend/test/harness.js';
import { bytesToHex } from '../../protocol/bytes.js';
import { sealBeaconKey } from '../../protocol/sealed-key.js';
import { ManualClock } from '../../test/support/clock.js';
import { foreignClient, testPki } from '../../test/support/pki.js';
import { main } from '../src/cli.js';
import { parseTime } from '../src/time.js';

const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url));

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Every secret the tests hand the CLI, and everything the CLI printed: checked at the end. */
const secrets = new Set<string>();
const printed: string[] = [];

/** The compiled CLI as a separate process, with optional standard input. */
function runCli(args: readonly string[], stdin = ''): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [CLI, ...args], (error, stdout, stderr) => {
      printed.push(stdout, stderr);
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
    child.stdin?.end(stdin);
  });
}

/** main() in this process, its output captured; `now` is its clock. */
async function runMain(
  args: readonly string[],
  stdin = '',
  now: () => number = () => Date.now(),
): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(args, {
    stdout: (t) => void out.push(t),
    stderr: (t) => void err.push(t),
    readStdin: () => Promise.resolve(stdin),
    now,
  });
  const run = { code, stdout: out.join('\n'), stderr: err.join('\n') };
  printed.push(run.stdout, run.stderr);
  return run;
}

const json = (run: Run) => JSON.parse(run.stdout) as Record<string, unknown>;

class Case {
  readonly beaconId = `SB-${randomBytes(4).toString('hex')}`;
  readonly skBeacon = new Uint8Array(randomBytes(32));
  readonly skTPast = new Uint8Array(randomBytes(32));
  constructor() {
    secrets.add(bytesToHex(this.skBeacon));
    secrets.add(bytesToHex(this.skTPast));
  }
  get skTPastHex(): string {
    return bytesToHex(this.skTPast);
  }
}

describe('health-authority CLI against a real app backend', function () {
  this.timeout(60_000);
  let db: Database;
  let stub: PoliceStub;
  let h: Harness;
  let dir: string;
  let server: string;
  let keyFile: string;
  let caFile: string;

  /** The connection and signing options every register / end needs. */
  const conn = () => ['--server', server, '--ca', caFile, '--key', keyFile];

  async function sealedFor(c: Case, publicKey = authorityKeys.publicKey): Promise<string> {
    const path = join(dir, `${c.beaconId}.sealed.json`);
    await writeFile(path, JSON.stringify(sealBeaconKey(publicKey, c.beaconId, c.skBeacon)));
    return path;
  }

  async function skFile(c: Case): Promise<string> {
    const path = join(dir, `${c.beaconId}.sk`);
    await writeFile(path, `${c.skTPastHex}\n`, { mode: 0o600 });
    return path;
  }

  async function row(beaconId: string) {
    const { rows } = await db.query<{
      sk_t_past_hash: string | null;
      sk_beacon_sealed: Uint8Array | null;
      keys_sealed: Uint8Array | null;
      t_past: number;
      window_seconds: number;
      state: string;
    }>(
      'SELECT sk_t_past_hash, sk_beacon_sealed, keys_sealed, t_past, window_seconds, state FROM quarantines WHERE beacon_id = $1',
      [beaconId],
    );
    return rows;
  }

  before(async () => {
    const pki = await testPki();
    db = await openDatabase({ dataDir: 'memory://' });
    stub = new PoliceStub();
    await stub.up();
    // The CLI signs with the real time, so the server's clock starts there (and is kept there).
    h = await startBackend(db, stub, { clock: new ManualClock(Date.now()) });
    server = `https://localhost:${h.backend.publicPort}`;
    dir = await mkdtemp(join(tmpdir(), 'ha-cli-'));
    keyFile = join(dir, 'authority.key');
    await writeFile(keyFile, authorityKeys.privateKey, { mode: 0o600 });
    await writeFile(join(dir, 'authority.pub'), authorityKeys.publicKey);
    caFile = join(dir, 'ca.crt');
    await writeFile(caFile, pki.ca.cert);
  });
  beforeEach(() => {
    h.clock.ms = Date.now();
  });
  after(async () => {
    await h?.backend.close();
    await stub?.down();
    await db?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  describe('keys', () => {
    it('writes a P-256 pair (PKCS#8 0600, SPKI), refuses to overwrite, replaces with --force', async () => {
      const out = join(dir, 'new-keys');
      const made = await runMain(['keys', '--out', out, '--json']);
      assert.equal(made.code, 0, made.stderr);
      const report = json(made);
      assert.equal(report.ok, true);
      const keyPath = join(out, 'authority.key');
      const pubPath = join(out, 'authority.pub');
      assert.equal(report.privateKey, keyPath);
      const keyPem = await readFile(keyPath, 'utf8');
      const pubPem = await readFile(pubPath, 'utf8');
      assert.match(keyPem, /^-----BEGIN PRIVATE KEY-----\n/);
      assert.match(pubPem, /^-----BEGIN PUBLIC KEY-----\n/);
      assert.equal((await stat(keyPath)).mode & 0o777, 0o600);
      assert.equal((await stat(out)).mode & 0o777, 0o700);
      const key = createPrivateKey(keyPem);
      assert.equal(key.asymmetricKeyDetails?.namedCurve, 'prime256v1');
      const data = Buffer.from('pair?');
      assert.ok(verify('sha256', data, createPublicKey(pubPem), sign('sha256', data, key)));
      assert.equal(
        report.publicKeySha256,
        createHash('sha256')
          .update(createPublicKey(pubPem).export({ type: 'spki', format: 'der' }))
          .digest('hex'),
      );

      const again = await runMain(['keys', '--out', out]);
      assert.equal(again.code, 2);
      assert.match(again.stderr, /already exist.*--force/);
      assert.equal(await readFile(keyPath, 'utf8'), keyPem, 'the existing key is untouched');

      const forced = await runMain(['keys', '--out', out, '--force']);
      assert.equal(forced.code, 0, forced.stderr);
      assert.notEqual(await readFile(keyPath, 'utf8'), keyPem);
      assert.equal((await stat(keyPath)).mode & 0o777, 0o600);
      assert.deepEqual((await readdir(out)).sort(), ['authority.key', 'authority.pub']);
    });
  });

  describe('register and end', () => {
    const c = new Case();

    it('status: reachable, ready, certificate of the app backend (compiled CLI)', async () => {
      const run = await runCli(['status', '--server', server, '--ca', caFile, '--json']);
      assert.equal(run.code, 0, run.stderr);
      const report = json(run);
      assert.equal(report.reachable, true);
      assert.equal(report.ready, true);
      const cert = report.certificate as Record<string, unknown>;
      assert.match(String(cert.subject), /CN=app-backend/);
      assert.ok(Date.parse(String(cert.validTo)) > Date.now());
      const text = await runMain(['status', '--server', server, '--ca', caFile]);
      assert.equal(text.code, 0);
      assert.match(text.stdout, /reachable: +yes/);
      assert.match(text.stdout, /ready: +yes/);
    });

    it('register → 201, the app backend holds H(SK_T_PAST) and sealed SK_BEACON; nothing written (compiled CLI, key on stdin)', async () => {
      const sealed = await sealedFor(c);
      const before = (await readdir(dir)).sort();
      const run = await runCli(
        [
          'register',
          ...conn(),
          '--sealed-key',
          sealed,
          '--sk-t-past',
          '-',
          '--t-past',
          '20410',
          '--window',
          '600',
          '--json',
        ],
        `${c.skTPastHex}\n`,
      );
      assert.equal(run.code, 0, run.stderr);
      const report = json(run);
      assert.equal(report.ok, true);
      assert.equal(report.status, 201);
      assert.equal(report.beaconId, c.beaconId);
      assert.match(String(report.quarantineId), /^[0-9a-f-]{36}$/);
      assert.equal(run.stderr, '', 'no warning: the key came on standard input');

      const [stored, ...more] = await row(c.beaconId);
      assert.equal(more.length, 0);
      assert.ok(stored);
      assert.equal(stored.state, 'registered');
      assert.equal(Number(stored.t_past), 20410);
      assert.equal(stored.window_seconds, 600);
      assert.equal(stored.sk_t_past_hash, createHash('sha256').update(c.skTPast).digest('hex'));
      assert.ok(stored.sk_beacon_sealed, 'SK_BEACON stored sealed');
      assert.deepEqual(
        openBeaconKey(h.config.kek, c.beaconId, stored.sk_beacon_sealed),
        c.skBeacon,
        'the SK_BEACON the app backend holds is the one from the sealed file',
      );
      assert.ok(stored.keys_sealed, 'K_enc ‖ K_mac stored sealed');
      const derived = deriveKeyMaterial(c.skBeacon);
      const opened = openDerivedKeys(h.config.kek, c.beaconId, stored.keys_sealed);
      assert.deepEqual(new Uint8Array(opened.kMac), derived.kMac);
      assert.deepEqual(new Uint8Array(opened.kEnc), derived.kEnc);
      assert.deepEqual((await readdir(dir)).sort(), before, 'no file written or removed');
    });

    it('the same registration again → exit 3 BEACON_IN_USE, the sealed file kept', async () => {
      const sealed = join(dir, `${c.beaconId}.sealed.json`);
      const args = [
        'register',
        ...conn(),
        '--sealed-key',
        sealed,
        '--sk-t-past',
        `@${await skFile(c)}`,
        '--t-past',
        '20410',
        '--delete-sealed-key',
      ];
      const text = await runMain(args);
      assert.equal(text.code, 3);
      assert.match(text.stderr, /409 BEACON_IN_USE/);
      const asJson = await runMain([...args, '--json']);
      assert.equal(asJson.code, 3);
      assert.deepEqual(
        { ...json(asJson), message: undefined },
        {
          ok: false,
          command: 'register',
          exitCode: 3,
          error: 'BEACON_IN_USE',
          status: 409,
          message: undefined,
        },
      );
      await stat(sealed); // still there: nothing was registered by this run
    });

    it('end → 200 and both keys are gone; again → exit 3 NO_ACTIVE_QUARANTINE', async () => {
      const run = await runMain(['end', ...conn(), '--beacon', c.beaconId, '--json']);
      assert.equal(run.code, 0, run.stderr);
      assert.deepEqual(json(run), {
        ok: true,
        command: 'end',
        exitCode: 0,
        status: 200,
        beaconId: c.beaconId,
        state: 'ended',
      });
      const [stored] = await row(c.beaconId);
      assert.equal(stored?.state, 'ended');
      assert.equal(stored?.sk_t_past_hash, null);
      assert.equal(stored?.sk_beacon_sealed, null);
      assert.equal(stored?.keys_sealed, null);

      const again = await runMain(['end', ...conn(), '--beacon', c.beaconId]);
      assert.equal(again.code, 3);
      assert.match(again.stderr, /404 NO_ACTIVE_QUARANTINE/);
    });

    it('--delete-sealed-key removes the sealed file after a 201; a key typed inline is warned about', async () => {
      const d = new Case();
      const sealed = await sealedFor(d);
      const run = await runMain([
        'register',
        ...conn(),
        '--sealed-key',
        sealed,
        '--sk-t-past',
        d.skTPastHex.toUpperCase(),
        '--t-past',
        '7',
        '--delete-sealed-key',
      ]);
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, new RegExp(`registered: beacon ${d.beaconId}, T_PAST 7`));
      assert.match(run.stderr, /visible to other users/);
      await assert.rejects(stat(sealed), { code: 'ENOENT' });
      const [stored] = await row(d.beaconId);
      assert.equal(stored?.sk_t_past_hash, createHash('sha256').update(d.skTPast).digest('hex'));
    });

    it('a JWT for another issuer or audience is refused by the server → exit 3 AUTH_INVALID', async () => {
      const d = new Case();
      const sealed = await sealedFor(d);
      for (const extra of [
        ['--issuer', 'someone-else'],
        ['--audience', 'smartbeacon-police-backend'],
      ]) {
        const run = await runMain([
          'register',
          ...conn(),
          ...extra,
          '--sealed-key',
          sealed,
          '--sk-t-past',
          `@${await skFile(d)}`,
          '--t-past',
          '1',
          '--json',
        ]);
        assert.equal(run.code, 3, run.stderr);
        assert.equal(json(run).error, 'AUTH_INVALID');
        assert.match(run.stderr, /APP_HA_PUBLIC_KEY/);
      }
      assert.equal((await row(d.beaconId)).length, 0);
    });
  });

  describe('authorised absences', () => {
    // 2026-11-30T08:00Z, 09:00 at +01:00: the app backend and the CLI both run on this clock.
    const T = Date.UTC(2026, 10, 30, 8, 0);
    const MIN = 60_000;
    const c = new Case();
    const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
    const ha = (args: readonly string[]) => runMain(args, '', h.clock.now);

    async function stored(beaconId: string) {
      const { rows } = await db.query<{
        id: string;
        starts_at: number;
        ends_at: number;
        created_by: string;
        cancelled_at: number | null;
      }>(
        `SELECT a.id, a.starts_at, a.ends_at, a.created_by, a.cancelled_at FROM absences a
           JOIN quarantines q ON q.id = a.quarantine_id WHERE q.beacon_id = $1 ORDER BY a.starts_at`,
        [beaconId],
      );
      return rows.map((r) => ({
        ...r,
        starts_at: Number(r.starts_at),
        ends_at: Number(r.ends_at),
        cancelled_at: r.cancelled_at === null ? null : Number(r.cancelled_at),
      }));
    }

    before(async () => {
      h.clock.ms = T;
      const run = await ha([
        'register',
        ...conn(),
        '--sealed-key',
        await sealedFor(c),
        '--sk-t-past',
        `@${await skFile(c)}`,
        '--t-past',
        '20422',
        '--delete-sealed-key',
      ]);
      assert.equal(run.code, 0, run.stderr);
    });
    beforeEach(() => {
      h.clock.ms = T;
    });

    it('absence → absences → absence-cancel against the app backend; only the two times are stored', async () => {
      const first = await ha([
        'absence',
        ...conn(),
        '--beacon',
        c.beaconId,
        '--from',
        '2026-11-30T09:30+01:00',
        '--for',
        '1h30m',
        '--json',
      ]);
      assert.equal(first.code, 0, first.stderr);
      const made = json(first);
      assert.match(String(made.absenceId), UUID);
      assert.deepEqual(made, {
        ok: true,
        command: 'absence',
        exitCode: 0,
        status: 201,
        beaconId: c.beaconId,
        absenceId: made.absenceId,
        startsAt: T + 30 * MIN,
        endsAt: T + 120 * MIN,
        scheduledBy: 'health-authority',
        cancelledAt: null,
      });

      const second = await ha([
        'absence',
        ...conn(),
        '--beacon',
        c.beaconId,
        '--from',
        'now',
        '--until',
        '2026-11-30T12:00Z',
      ]);
      assert.equal(second.code, 0, second.stderr);
      const secondId = /^scheduled absence (\S+) for beacon (\S+) \(4h\)$/m.exec(second.stdout);
      assert.ok(secondId?.[1] && UUID.test(secondId[1]), second.stdout);
      assert.equal(secondId[2], c.beaconId);
      assert.match(second.stdout, /\(UTC 2026-11-30T08:00Z\)/);
      assert.match(second.stdout, /\(UTC 2026-11-30T12:00Z\)/);
      // Local time is this computer's zone: whatever it is, it reads back to the same instant.
      const local = /^ {2}from {3}(\S+)/m.exec(second.stdout)?.[1] ?? '';
      assert.equal(parseTime(local, '--from', 0), T);

      const longest = await ha([
        'absence',
        ...conn(),
        '--beacon',
        c.beaconId,
        '--from',
        '2026-11-30T10:00Z',
        '--for',
        '24h',
        '--json',
      ]);
      assert.equal(longest.code, 0, longest.stderr);
      assert.equal(json(longest).endsAt, T + 26 * 60 * MIN);

      assert.deepEqual(
        (await stored(c.beaconId)).map((r) => [r.id, r.starts_at, r.ends_at, r.created_by]),
        [
          [secondId[1], T, T + 240 * MIN, 'health-authority'],
          [made.absenceId, T + 30 * MIN, T + 120 * MIN, 'health-authority'],
          [json(longest).absenceId, T + 120 * MIN, T + 26 * 60 * MIN, 'health-authority'],
        ],
      );

      const listed = await ha(['absences', ...conn(), '--beacon', c.beaconId, '--json']);
      assert.equal(listed.code, 0, listed.stderr);
      const report = json(listed);
      assert.deepEqual(Object.keys(report), [
        'ok',
        'command',
        'exitCode',
        'status',
        'beaconId',
        'absences',
      ]);
      assert.deepEqual(report.absences, [
        {
          absenceId: secondId[1],
          startsAt: T,
          endsAt: T + 240 * MIN,
          scheduledBy: 'health-authority',
          cancelledAt: null,
        },
        {
          absenceId: made.absenceId,
          startsAt: T + 30 * MIN,
          endsAt: T + 120 * MIN,
          scheduledBy: 'health-authority',
          cancelledAt: null,
        },
        {
          absenceId: json(longest).absenceId,
          startsAt: T + 120 * MIN,
          endsAt: T + 26 * 60 * MIN,
          scheduledBy: 'health-authority',
          cancelledAt: null,
        },
      ]);
      const table = await ha(['absences', ...conn(), '--beacon', c.beaconId]);
      assert.equal(table.code, 0, table.stderr);
      assert.match(table.stdout, /^ABSENCE +FROM +UNTIL +LENGTH +BY +STATE$/m);
      assert.match(
        table.stdout,
        new RegExp(`^${secondId[1]} .* 4h +health-authority +under way$`, 'm'),
      );
      assert.match(
        table.stdout,
        new RegExp(`^${String(made.absenceId)} .* 1h30m +health-authority +scheduled$`, 'm'),
      );

      h.clock.advance(5 * MIN);
      const cancel = [
        'absence-cancel',
        ...conn(),
        '--beacon',
        c.beaconId,
        '--absence',
        String(made.absenceId).toUpperCase(),
        '--json',
      ];
      const cancelled = await ha(cancel);
      assert.equal(cancelled.code, 0, cancelled.stderr);
      assert.deepEqual(json(cancelled), {
        ...made,
        command: 'absence-cancel',
        status: 200,
        cancelledAt: T + 5 * MIN,
      });
      h.clock.advance(MIN);
      const again = await ha(cancel);
      assert.equal(again.code, 0, again.stderr);
      assert.equal(json(again).cancelledAt, T + 5 * MIN, 'cancelling twice changes nothing');
      assert.equal(
        (await stored(c.beaconId)).find((r) => r.id === made.absenceId)?.cancelled_at,
        T + 5 * MIN,
      );
      const text = await ha(cancel.slice(0, -1));
      assert.match(
        text.stdout,
        new RegExp(`^cancelled absence ${String(made.absenceId)} of beacon ${c.beaconId}$`, 'm'),
      );
      const after = await ha(['absences', ...conn(), '--beacon', c.beaconId]);
      assert.match(after.stdout, new RegExp(`^${String(made.absenceId)} .* +cancelled$`, 'm'));
    });

    it('refusals by the app backend → exit 3 with its code: BAD_ABSENCE, NO_ACTIVE_QUARANTINE, NO_SUCH_ABSENCE', async () => {
      const before = (await stored(c.beaconId)).length;
      const schedule = (beaconId: string, from: string) =>
        ha(['absence', ...conn(), '--beacon', beaconId, '--from', from, '--for', '1h', '--json']);
      const cases: [Promise<Run>, string, number, RegExp][] = [
        // Two minutes ago: the app backend allows one minute of slack, no retroactive excuse.
        [
          schedule(c.beaconId, '2026-11-30T08:58+01:00'),
          'BAD_ABSENCE',
          400,
          /start at most a minute in the past/,
        ],
        [schedule('SB-nobody', 'now'), 'NO_ACTIVE_QUARANTINE', 404, /no active quarantine/],
        [
          ha(['absences', ...conn(), '--beacon', 'SB-nobody', '--json']),
          'NO_ACTIVE_QUARANTINE',
          404,
          /no active quarantine/,
        ],
        [
          ha([
            'absence-cancel',
            ...conn(),
            '--beacon',
            c.beaconId,
            '--absence',
            randomUUID(),
            '--json',
          ]),
          'NO_SUCH_ABSENCE',
          404,
          /"absences" lists them/,
        ],
      ];
      for (const [running, code, status, hint] of cases) {
        const run = await running;
        assert.equal(run.code, 3, run.stderr);
        assert.match(run.stderr, new RegExp(`${status} ${code}`));
        assert.match(run.stderr, hint);
        assert.deepEqual(
          [json(run).ok, json(run).exitCode, json(run).error, json(run).status],
          [false, 3, code, status],
        );
      }
      assert.equal((await stored(c.beaconId)).length, before);
    });

    it('times and options the CLI can check itself → exit 2, nothing sent', async () => {
      let requests = 0;
      const pki = await testPki();
      const counting = createHttpsServer(
        { cert: pki.appBackend.cert, key: pki.appBackend.key },
        (req, res) => {
          requests += 1;
          req.resume();
          res.writeHead(404).end(JSON.stringify({ error: 'NO_ACTIVE_QUARANTINE' }));
        },
      );
      await new Promise<void>((resolve) => counting.listen(0, '127.0.0.1', resolve));
      const url = `https://localhost:${(counting.address() as { port: number }).port}`;
      const to = ['--server', url, '--ca', caFile, '--key', keyFile, '--beacon', c.beaconId];
      const absence = (...extra: string[]) => ['absence', ...to, ...extra];
      try {
        const cases: [string[], RegExp][] = [
          [
            absence('--from', 'tomorrow', '--for', '1h'),
            /--from must be "now" or a time with its UTC offset/,
          ],
          [
            absence('--from', '2026-11-30T09:30', '--for', '1h'),
            /--from "2026-11-30T09:30" has no UTC offset: add one, e\.g\. 2026-11-30T09:30/,
          ],
          [
            absence('--from', '2026-11-30', '--for', '1h'),
            /--from "2026-11-30" needs a time of day/,
          ],
          [absence('--from', '2026-02-29T09:30Z', '--for', '1h'), /--from .*no day 29 in 2026-02/],
          [absence('--from', '2026-11-30T24:00Z', '--for', '1h'), /--from .*not a time of day/],
          [
            absence('--from', 'now', '--until', '30.11.2026 12:00'),
            /--until must be "now" or a time/,
          ],
          [absence('--from', 'now', '--for', '90'), /--for must be a duration such as 90m/],
          [absence('--from', 'now', '--for', '30m1h'), /--for must be a duration/],
          [absence('--from', 'now', '--for', '0h0m'), /--for must be longer than zero/],
          [absence('--from', 'now', '--for', '24h1s'), /--for "24h1s" is longer than 24h/],
          [absence('--from', 'now', '--for', '1d'), /--for must be a duration/],
          [
            absence('--from', '2026-11-30T10:00+01:00', '--until', '2026-11-30T09:00Z'),
            /--until .* is not after --from/,
          ],
          [
            absence('--from', '2026-11-30T10:00+01:00', '--until', '2026-12-01T10:00:01+01:00'),
            /--until is 24h1s after --from: an absence lasts at most 24h/,
          ],
          [absence('--from', 'now'), /"absence" needs --until or --for/],
          [
            absence('--from', 'now', '--until', 'now', '--for', '1h'),
            /takes only one of --until, --for/,
          ],
          [absence('--for', '1h'), /"absence" needs --from/],
          [
            absence('--from', 'now', '--for', '1h', '--absence', randomUUID()),
            /"absence" does not take --absence/,
          ],
          [
            ['absence-cancel', ...to, '--absence', 'the-dentist'],
            /--absence must be an absence ID/,
          ],
          [['absence-cancel', ...to], /"absence-cancel" needs --absence/],
          [['absences', ...to.slice(0, -1), 'SB 1'], /--beacon must be/],
          [['absences', ...to, '--from', 'now'], /"absences" does not take --from/],
        ];
        for (const [argv, pattern] of cases) {
          const run = await ha([...argv, '--json']);
          assert.equal(run.code, 2, `${argv.join(' ')}: ${run.stderr}`);
          assert.match(run.stderr, pattern, argv.join(' '));
          assert.deepEqual(
            [json(run).ok, json(run).exitCode, json(run).error],
            [false, 2, 'USAGE'],
          );
        }
        // The compiled CLI, on the wall clock: the same checks, the same exit code.
        for (const [argv, pattern] of cases.slice(0, 3)) {
          const run = await runCli(argv);
          assert.equal(run.code, 2, `${argv.join(' ')}: ${run.stderr}`);
          assert.match(run.stderr, pattern);
        }
        assert.equal(requests, 0, 'nothing was sent');
        // The counter counts: a valid command line does reach this server.
        const sent = await ha(['absences', ...to]);
        assert.equal(sent.code, 3, sent.stderr);
        assert.equal(requests, 1);
      } finally {
        await new Promise<void>((resolve) => counting.close(() => resolve()));
      }
      const help = await runCli(['absence', '--help']);
      assert.equal(help.code, 0);
      assert.match(help.stdout, /--for <duration>/);
    });
  });

  describe('input errors → exit 2, nothing sent', () => {
    it('a sealed key file made for another authority key', async () => {
      const d = new Case();
      const other = generateKeyPairSync('ec', {
        namedCurve: 'P-256',
        publicKeyEncoding: { type: 'spki', format: 'pem' },
        privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
      });
      const sealed = await sealedFor(d, other.publicKey);
      const run = await runMain([
        'register',
        ...conn(),
        '--sealed-key',
        sealed,
        '--sk-t-past',
        `@${await skFile(d)}`,
        '--t-past',
        '1',
        '--json',
      ]);
      assert.equal(run.code, 2);
      assert.match(run.stderr, /does not open with --key: it was sealed for another authority key/);
      assert.equal(json(run).error, 'SEALED_KEY_WRONG_KEY');
      assert.equal((await row(d.beaconId)).length, 0);
    });

    it('a file that is not a sealed key, a key that is not a P-256 private key, a missing CA', async () => {
      const d = new Case();
      const sk = `@${await skFile(d)}`;
      const notJson = join(dir, 'not-sealed.txt');
      await writeFile(notJson, 'hello');
      const wrongShape = join(dir, 'wrong-shape.json');
      await writeFile(wrongShape, '{"format":"something-else"}');
      const args = (sealed: string, key = keyFile, ca = caFile) => [
        'register',
        '--server',
        server,
        '--ca',
        ca,
        '--key',
        key,
        '--sealed-key',
        sealed,
        '--sk-t-past',
        sk,
        '--t-past',
        '1',
      ];
      for (const [argv, pattern] of [
        [args(notJson), /not a SmartBeacon sealed key file \(not JSON\)/],
        [args(wrongShape), /not a SmartBeacon sealed key file/],
        [args(await sealedFor(d), join(dir, 'authority.pub')), /is not a PEM private key/],
        [
          args(await sealedFor(d), keyFile, join(dir, 'nope.crt')),
          /--ca .*nope\.crt does not exist/,
        ],
        [args(await sealedFor(d), keyFile, keyFile), /--ca .* is not a PEM certificate/],
      ] as const) {
        const run = await runMain(argv);
        assert.equal(run.code, 2, `${argv.join(' ')}: ${run.stderr}`);
        assert.match(run.stderr, pattern);
      }
      assert.equal((await row(d.beaconId)).length, 0);
    });

    it('usage errors from the compiled CLI: no command, missing options, bad hex, bad T_PAST', async () => {
      const d = new Case();
      const sealed = await sealedFor(d);
      const base = ['register', ...conn(), '--sealed-key', sealed];
      const cases: [string[], RegExp][] = [
        [[], /no command given/],
        [['launch'], /unknown command "launch"/],
        [
          ['register', '--server', server],
          /needs --ca, --key, --sealed-key, --sk-t-past, --t-past/,
        ],
        [
          [...base, '--sk-t-past', d.skTPastHex.slice(2), '--t-past', '1'],
          /64 hex digits.*62 characters/,
        ],
        [
          [...base, '--sk-t-past', `${d.skTPastHex.slice(1)}g`, '--t-past', '1'],
          /not all of them hex/,
        ],
        [[...base, '--sk-t-past', '-', '--t-past', '1'], /standard input\) must be 32 bytes/],
        [[...base, '--sk-t-past', '-', '--t-past', '-3'], /--t-past.*ambiguous/],
        [[...base, '--sk-t-past', '-', '--t-past', '1.5'], /--t-past must be a whole number/],
        [
          [...base, '--sk-t-past', '-', '--t-past', '4294967296'],
          /--t-past must be a whole number/,
        ],
        [[...base, '--sk-t-past', '-', '--t-past', '1', '--window', '60'], /--window must be/],
        [['status', '--server', server.replace('https', 'http'), '--ca', caFile], /https:\/\//],
        [['end', ...conn(), '--beacon', 'SB 1'], /--beacon must be/],
        [['keys', '--out', dir, '--beacon', 'x'], /"keys" does not take --beacon/],
        [['status', '--server', server, '--ca', caFile, '--bogus'], /Unknown option '--bogus'/],
        [['register', ...conn(), d.skTPastHex], /not shown: it may be a key/],
      ];
      for (const [argv, pattern] of cases) {
        const run = await runCli([...argv, '--json']);
        assert.equal(run.code, 2, `${argv.join(' ')}: ${run.stderr}`);
        assert.match(run.stderr, pattern, argv.join(' '));
        const report = json(run);
        assert.equal(report.ok, false);
        assert.equal(report.exitCode, 2);
      }
      const help = await runCli(['register', '--help']);
      assert.equal(help.code, 0);
      assert.match(help.stdout, /--sealed-key <file>/);
      assert.match(help.stdout, /exit codes:/);
      assert.equal((await row(d.beaconId)).length, 0);
    });
  });

  describe('server trouble → exit 4', () => {
    it('a server whose certificate is not from --ca', async () => {
      const foreign = join(dir, 'foreign-ca.crt');
      await writeFile(foreign, (await foreignClient()).ca);
      const d = new Case();
      const run = await runMain([
        'register',
        '--server',
        server,
        '--ca',
        foreign,
        '--key',
        keyFile,
        '--sealed-key',
        await sealedFor(d),
        '--sk-t-past',
        `@${await skFile(d)}`,
        '--t-past',
        '1',
        '--json',
      ]);
      assert.equal(run.code, 4);
      assert.match(run.stderr, /certificate of localhost:\d+ is not trusted by --ca/);
      assert.equal(json(run).exitCode, 4);
      assert.equal((await row(d.beaconId)).length, 0);
      const status = await runMain(['status', '--server', server, '--ca', foreign, '--json']);
      assert.equal(status.code, 4);
      assert.equal(json(status).reachable, false);
    });

    it('a server answering 5xx: not ready, failed registration', async () => {
      const pki = await testPki();
      const failing = createHttpsServer(
        { cert: pki.appBackend.cert, key: pki.appBackend.key },
        (req, res) => {
          req.resume();
          if (req.url === '/healthz') res.writeHead(200).end('{"status":"ok"}');
          else res.writeHead(503).end(JSON.stringify({ error: 'UNAVAILABLE' }));
        },
      );
      await new Promise<void>((resolve) => failing.listen(0, '127.0.0.1', resolve));
      const url = `https://localhost:${(failing.address() as { port: number }).port}`;
      try {
        const status = await runMain(['status', '--server', url, '--ca', caFile, '--json']);
        assert.equal(status.code, 4);
        assert.deepEqual(
          [json(status).reachable, json(status).ready, json(status).readyzStatus],
          [true, false, 503],
        );
        assert.match(status.stderr, /not ready/);
        const d = new Case();
        const run = await runMain([
          'register',
          '--server',
          url,
          '--ca',
          caFile,
          '--key',
          keyFile,
          '--sealed-key',
          await sealedFor(d),
          '--sk-t-past',
          `@${await skFile(d)}`,
          '--t-past',
          '1',
        ]);
        assert.equal(run.code, 4);
        assert.match(
          run.stderr,
          /failed on the registration of beacon SB-[0-9a-f]+: 503 UNAVAILABLE/,
        );
      } finally {
        await new Promise<void>((resolve) => failing.close(() => resolve()));
      }
    });

    it('nothing listening', async () => {
      const port = await new Promise<number>((resolve) => {
        const s = createServer().listen(0, '127.0.0.1', () => {
          const p = (s.address() as { port: number }).port;
          s.close(() => resolve(p));
        });
      });
      const run = await runMain([
        'end',
        '--server',
        `https://127.0.0.1:${port}`,
        '--ca',
        caFile,
        '--key',
        keyFile,
        '--beacon',
        'SB-0001',
      ]);
      assert.equal(run.code, 4);
      assert.match(run.stderr, /refused the connection \(ECONNREFUSED\)/);
    });
  });

  describe('the key file', () => {
    it('a private key readable by others still works, with a warning', async () => {
      const loose = join(dir, 'loose.key');
      await writeFile(loose, authorityKeys.privateKey);
      await chmod(loose, 0o644);
      const run = await runMain([
        'end',
        '--server',
        server,
        '--ca',
        caFile,
        '--key',
        loose,
        '--beacon',
        'SB-none',
      ]);
      assert.equal(run.code, 3);
      assert.match(run.stderr, /can be read by other users \(mode 0644\)/);
      assert.match(run.stderr, /NO_ACTIVE_QUARANTINE/);
    });
  });

  // Declared last, so it runs after every test above has added what it printed.
  describe('afterwards', () => {
    it('no SK_T_PAST, SK_BEACON or JWT ever appeared on stdout or stderr', () => {
      assert.ok(secrets.size >= 10 && printed.length >= 40, 'the checks above ran');
      const all = printed.join('\n').toLowerCase();
      for (const secret of secrets) assert.ok(!all.includes(secret), 'a key was printed');
      assert.doesNotMatch(printed.join('\n'), /eyJ[A-Za-z0-9_-]{10,}/, 'a JWT was printed');
    });
  });
});
