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
  it("the app backend's own check accepts the CLI's JWT for exactly its body, and no other", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 512 }),
        fc.uint8Array({ minLength: 1, maxLength: 64 }),
        fc.integer({ min: 1_600_000_000, max: 2_500_000_000 }),
        async (body, other, seconds) => {
          const now = seconds * 1000;
          const token = signRequestJwt(body, pair.privateKey, { ...check, now });
          const auth = `Bearer ${token}`;
          await verifyAuthority(tx, check, auth, Buffer.from(body), now + 30_000);
          const changed = Buffer.concat([body, other]);
          await assert.rejects(verifyAuthority(tx, check, auth, changed, now), {
            code: 'AUTH_BODY_MISMATCH',
          });
          await assert.rejects(verifyAuthority(tx, check, auth, Buffer.from(body), now + 70_000), {
            code: 'AUTH_EXPIRED',
          });
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
        const t = signRequestJwt(Buffer.from('{}'), pair.privateKey, { ...check, now: Date.now() });
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
    assert.equal(wantsJson(['status', '--json']), true);
    assert.equal(wantsJson(['status', '--', '--json']), false);
  });
});
