import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import fc from 'fast-check';
import jwt from 'jsonwebtoken';
import type { Queryable } from '../../backend-kit/db.js';
import { verifyAuthority } from '../../app-backend/src/authority.js';
import { DEFAULT_AUDIENCE, DEFAULT_ISSUER, parseCommandLine, wantsJson } from '../src/args.js';
import { CliError, EXIT } from '../src/errors.js';
import { endpoint } from '../src/http.js';
import { parseKeyHex, parseServer, parseTPast } from '../src/inputs.js';
import { JWT_LIFETIME_SECONDS, signRequestJwt } from '../src/jwt.js';
import {
  MAX_ABSENCE_MS,
  formatDuration,
  formatTime,
  parseDuration,
  parseTime,
} from '../src/time.js';

const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const check = {
  publicKey: pair.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  issuer: DEFAULT_ISSUER,
  audience: DEFAULT_AUDIENCE,
};
/** A transaction whose jti insert always succeeds (the replay table is the server's business). */
const tx: Queryable = { query: () => Promise.resolve({ rows: [], rowCount: 1 }) };

function usageFailure(fn: () => unknown): CliError {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof CliError);
    assert.equal(error.exitCode, EXIT.usage);
    return error;
  }
  assert.fail('expected a usage error');
}

describe('health-authority CLI units', () => {
  it("the app backend's own check accepts the CLI's JWT for exactly its request and body, and no other", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 512 }),
        fc.uint8Array({ minLength: 1, maxLength: 64 }),
        fc.integer({ min: 1_600_000_000, max: 2_500_000_000 }),
        async (body, other, seconds) => {
          const now = seconds * 1000;
          const request = 'POST /v1/quarantines/SB-0001/end';
          const token = signRequestJwt(body, pair.privateKey, { ...check, now, request });
          const auth = `Bearer ${token}`;
          const verify = (bytes: Uint8Array, at: number, req = request) =>
            verifyAuthority(tx, check, auth, Buffer.from(bytes), at, req);
          await verify(body, now + 30_000);
          await assert.rejects(verify(Buffer.concat([body, other]), now), {
            code: 'AUTH_BODY_MISMATCH',
          });
          await assert.rejects(verify(body, now, 'GET /v1/quarantines/SB-0001/absences'), {
            code: 'AUTH_WRONG_REQUEST',
          });
          await assert.rejects(verify(body, now + 70_000), { code: 'AUTH_EXPIRED' });
          const claims = jwt.decode(token, { complete: true });
          assert.equal(claims?.header.alg, 'ES256');
          const payload = claims?.payload as Record<string, unknown>;
          assert.equal(Number(payload.exp) - Number(payload.iat), JWT_LIFETIME_SECONDS);
          assert.match(String(payload.jti), /^[A-Za-z0-9-]{16,64}$/);
        },
      ),
      { numRuns: 40 },
    );
  });

  it('every token has its own jti', () => {
    const jtis = new Set(
      Array.from({ length: 50 }, () => {
        const t = signRequestJwt(Buffer.from('{}'), pair.privateKey, {
          ...check,
          now: Date.now(),
          request: 'POST /v1/quarantines',
        });
        return (jwt.decode(t) as { jti: string }).jti;
      }),
    );
    assert.equal(jtis.size, 50);
  });

  it('a key that is not 64 hex digits is refused without being echoed', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({
            unit: fc.constantFrom(...'0123456789abcdef'),
            minLength: 16,
            maxLength: 200,
          }),
          fc
            .tuple(
              fc.uint8Array({ minLength: 32, maxLength: 32 }),
              fc.nat(63),
              fc.constantFrom('g', 'x', ' ', '-', 'é'),
            )
            .map(([b, i, c]) => {
              const hex = Buffer.from(b).toString('hex');
              return hex.slice(0, i) + c + hex.slice(i + 1);
            }),
        ),
        (text) => {
          fc.pre(!/^\s*[0-9a-fA-F]{64}\s*$/.test(text));
          const error = usageFailure(() => parseKeyHex(text, '--sk-t-past'));
          assert.ok(!error.message.includes(text.trim().slice(0, 16)), error.message);
        },
      ),
    );
  });

  it('64 hex digits in any case, with surrounding white space, are the key', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.boolean(), (bytes, upper) => {
        fc.pre(bytes.some((b) => b !== 0));
        const hex = Buffer.from(bytes).toString('hex');
        assert.deepEqual(parseKeyHex(` ${upper ? hex.toUpperCase() : hex}\n`, 'k'), bytes);
      }),
    );
    usageFailure(() => parseKeyHex('0'.repeat(64), 'k'));
  });

  it('T_PAST is an unsigned 32-bit integer written in decimal', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), (n) => {
        assert.equal(parseTPast(String(n)), n);
      }),
    );
    for (const bad of ['', '-1', '1.0', '1e3', '0x10', '4294967296', ' 1', 'abc'])
      usageFailure(() => parseTPast(bad));
  });

  it('server URLs: https only; paths are appended to a prefix', () => {
    usageFailure(() => parseServer('http://localhost:8443'));
    usageFailure(() => parseServer('https://user:pw@localhost:8443'));
    usageFailure(() => parseServer('localhost:8443'));
    const plain = parseServer('https://app.example.org:8443');
    assert.equal(endpoint(plain, '/readyz').href, 'https://app.example.org:8443/readyz');
    const prefixed = parseServer('https://gw.example.org/smartbeacon/');
    assert.equal(
      endpoint(prefixed, '/v1/quarantines/SB-1/end').href,
      'https://gw.example.org/smartbeacon/v1/quarantines/SB-1/end',
    );
  });

  describe('--from / --until / --for', () => {
    const NOW = Date.UTC(2026, 10, 30, 8, 0, 12, 345);
    const LAST = Date.UTC(9999, 11, 30);
    const offsets = fc.integer({ min: -(23 * 60 + 59), max: 23 * 60 + 59 });

    /** Only the CLI's usage error, naming the option, may come out of a parser. */
    function parsesOrRefuses(parse: () => number, flag: string, check: (n: number) => void): void {
      let n: number;
      try {
        n = parse();
      } catch (error) {
        assert.ok(error instanceof CliError, String(error));
        assert.equal(error.exitCode, EXIT.usage);
        assert.equal(error.code, 'USAGE');
        assert.ok(error.message.startsWith(flag), error.message);
        return;
      }
      check(n);
    }

    const near = (text: string) =>
      fc.oneof(
        fc.string(),
        fc.string({ unit: fc.constantFrom(...text), maxLength: 40 }),
        fc.string({ unit: 'grapheme', maxLength: 30 }),
      );

    it('any text is a time or the usage error naming the option', () => {
      const timeLike = fc
        .tuple(fc.integer({ min: 0, max: LAST }), offsets, fc.nat(40), fc.string({ maxLength: 3 }))
        .map(([ms, off, i, junk]) => {
          const valid = formatTime(ms, off);
          return valid.slice(0, i) + junk + valid.slice(i + junk.length);
        });
      fc.assert(
        fc.property(fc.oneof(near('0123456789-:.+TtZz now'), timeLike), (text) => {
          parsesOrRefuses(
            () => parseTime(text, '--from', NOW),
            '--from',
            (ms) => assert.ok(Number.isSafeInteger(ms) && ms >= 0 && ms < Date.UTC(10000, 0, 2)),
          );
        }),
        { numRuns: 2000 },
      );
    });

    it('any text is a duration of at most 24 h or the usage error naming the option', () => {
      fc.assert(
        fc.property(
          fc.oneof(
            near('0123456789hms'),
            fc.tuple(fc.nat(30), fc.nat(200), fc.nat(5000)).map(([h, m, s]) => `${h}h${m}m${s}s`),
          ),
          (text) => {
            parsesOrRefuses(
              () => parseDuration(text, '--for'),
              '--for',
              (ms) => assert.ok(ms > 0 && ms <= MAX_ABSENCE_MS && ms % 1000 === 0),
            );
          },
        ),
        { numRuns: 2000 },
      );
    });

    it('an instant written at any offset reads back as the same instant, in every accepted form', () => {
      fc.assert(
        fc.property(fc.integer({ min: 86_400_000, max: LAST }), offsets, (ms, off) => {
          const text = formatTime(ms, off);
          assert.equal(parseTime(text, '--from', NOW), ms, text);
          const basic = text.replace(/([+-]\d{2}):(\d{2})$/, '$1$2');
          const lower = text.replace('T', 't').replace(/Z$/, 'z');
          const spaced = text.replace('T', ' ');
          for (const variant of [basic, lower, spaced])
            assert.equal(parseTime(variant, '--from', NOW), ms, variant);
        }),
        { numRuns: 2000 },
      );
    });

    it('a time written the way the CLI prints it is printed back the same', () => {
      const written = fc
        .record({
          y: fc.integer({ min: 1971, max: 9998 }),
          mo: fc.integer({ min: 1, max: 12 }),
          d: fc.integer({ min: 1, max: 28 }),
          h: fc.integer({ min: 0, max: 23 }),
          mi: fc.integer({ min: 0, max: 59 }),
          s: fc.integer({ min: 0, max: 59 }),
          off: offsets,
        })
        .map(({ off, ...t }) => {
          const p = (n: number, w = 2) => String(n).padStart(w, '0');
          const a = Math.abs(off);
          const zone =
            off === 0 ? 'Z' : `${off < 0 ? '-' : '+'}${p(Math.floor(a / 60))}:${p(a % 60)}`;
          const secs = t.s === 0 ? '' : `:${p(t.s)}`;
          return {
            off,
            text: `${p(t.y, 4)}-${p(t.mo)}-${p(t.d)}T${p(t.h)}:${p(t.mi)}${secs}${zone}`,
          };
        });
      fc.assert(
        fc.property(written, ({ off, text }) => {
          assert.equal(formatTime(parseTime(text, '--until', NOW), off), text);
        }),
        { numRuns: 2000 },
      );
    });

    it('a duration reads back as written, and is printed back the same', () => {
      fc.assert(
        fc.property(fc.integer({ min: 1, max: MAX_ABSENCE_MS / 1000 }), (seconds) => {
          const text = formatDuration(seconds * 1000);
          assert.match(text, /^(\d+h)?(\d+m)?(\d+s)?$/);
          assert.equal(parseDuration(text, '--for'), seconds * 1000, text);
        }),
      );
      fc.assert(
        fc.property(fc.nat(24), fc.nat(1440), fc.nat(86_400), (h, m, s) => {
          const ms = (h * 3600 + m * 60 + s) * 1000;
          fc.pre(ms > 0 && ms <= MAX_ABSENCE_MS);
          assert.equal(parseDuration(`${h}h${m}m${s}s`, '--for'), ms);
        }),
      );
    });

    it('examples: now, offsets, what is refused', () => {
      assert.equal(parseTime('now', '--from', NOW), Date.UTC(2026, 10, 30, 8, 0, 12));
      assert.equal(parseTime('NOW', '--from', NOW), Date.UTC(2026, 10, 30, 8, 0, 12));
      const expected = Date.UTC(2026, 10, 30, 8, 30);
      for (const text of [
        '2026-11-30T09:30+01:00',
        '2026-11-30T09:30+0100',
        '2026-11-30T09:30+01',
        '2026-11-30T08:30Z',
        '2026-11-30T08:30:00.000Z',
        '2026-11-30T03:30-05:00',
        '2026-11-30 14:00+05:30',
        '2026-12-01T00:30+16:00',
      ])
        assert.equal(parseTime(text, '--from', NOW), expected, text);
      assert.equal(parseTime('2028-02-29T00:00Z', '--from', NOW), Date.UTC(2028, 1, 29));
      for (const bad of [
        '',
        ' now',
        'yesterday',
        '2026-11-30T09:30',
        '2026-11-30',
        '2026-11-30T9:30Z',
        '2026-13-01T09:30Z',
        '2027-02-29T09:30Z',
        '2026-11-31T09:30Z',
        '2026-11-30T24:00Z',
        '2026-11-30T23:60Z',
        '2026-11-30T23:59:60Z',
        '2026-11-30T09:30+24:00',
        '2026-11-30T09:30.5Z',
        '2026-11-30T09:30:00.1234Z',
        '1969-12-31T23:59Z',
        '1970-01-01T00:30+01:00',
        '+02026-11-30T09:30Z',
        '１２３４-11-30T09:30Z',
        '1796027400000',
      ])
        usageFailure(() => parseTime(bad, '--from', NOW));
      assert.equal(parseDuration('90m', '--for'), 90 * 60_000);
      assert.equal(parseDuration('1h30m', '--for'), 90 * 60_000);
      assert.equal(parseDuration('24h', '--for'), MAX_ABSENCE_MS);
      assert.equal(parseDuration('45s', '--for'), 45_000);
      for (const bad of ['', 'h', '1', '1.5h', '1H', '1d', '30m1h', '-1h', '1h 30m', '24h1s', '0s'])
        usageFailure(() => parseDuration(bad, '--for'));
      assert.equal(formatDuration(90 * 60_000), '1h30m');
      assert.equal(formatTime(Date.UTC(2026, 10, 30, 8, 30), 60), '2026-11-30T09:30+01:00');
      assert.equal(formatTime(Date.UTC(2026, 10, 30, 8, 30, 5, 7), 0), '2026-11-30T08:30:05.007Z');
    });
  });

  it('command lines: help, per-command options, --json detection', () => {
    assert.equal(parseCommandLine(['--help']).kind, 'help');
    assert.equal(parseCommandLine(['help', 'end']).kind, 'help');
    assert.equal(parseCommandLine(['end', '-h']).kind, 'help');
    const run = parseCommandLine(['status', '--server', 'https://x', '--ca', 'ca.crt', '--json']);
    assert.equal(run.kind === 'run' && run.command, 'status');
    usageFailure(() => parseCommandLine(['status', '--server', 'https://x', '--ca', '']));
    usageFailure(() =>
      parseCommandLine(['status', '--server', 'https://x', '--ca', 'c', '--key', 'k']),
    );
    const absence = [
      'absence',
      '--server',
      'https://x',
      '--ca',
      'c',
      '--key',
      'k',
      '--beacon',
      'B',
    ];
    assert.equal(parseCommandLine([...absence, '--from', 'now', '--for', '1h']).kind, 'run');
    assert.match(
      usageFailure(() => parseCommandLine([...absence, '--from', 'now'])).message,
      /needs --until or --for/,
    );
    assert.match(
      usageFailure(() =>
        parseCommandLine([...absence, '--from', 'now', '--for', '1h', '--until', 'now']),
      ).message,
      /only one of --until, --for/,
    );
    assert.equal(wantsJson(['status', '--json']), true);
    assert.equal(wantsJson(['status', '--', '--json']), false);
  });
});
