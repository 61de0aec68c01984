import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect as tlsConnect } from 'node:tls';
import type { ServerLimits } from '../../backend-kit/server-limits.js';
import { police as appInternal, presence } from '../../app-backend/test/harness.js';
import { alertMessage } from '../../police-backend/test/harness.js';
import { PRESENCE_BODY_LENGTH } from '../../protocol/presence.js';
import { httpsRequest } from '../support/https-client.js';
import { testPki } from '../support/pki.js';
import { type FloodContext, waitFor } from './services.js';
import {
  type SlowConnection,
  type SlowEnd,
  type SlowKind,
  type TlsIdentity,
  slowConnection,
} from './slow-clients.js';

/** Short versions of the production limits (backend-kit/server-limits.ts), so a test takes seconds. */
export const SHORT_LIMITS: ServerLimits = {
  handshakeTimeoutMs: 300,
  headersTimeoutMs: 300,
  requestTimeoutMs: 600,
  keepAliveTimeoutMs: 5_000,
  checkIntervalMs: 50,
  maxConnections: 12,
  maxInternalConnections: 12,
};

/** How a slow connection ended; fails if the server has not cut it within a deadline far past every timeout. */
function cut(c: SlowConnection): Promise<SlowEnd> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('the server never cut the connection')), 10_000);
  });
  return Promise.race([c.ended, deadline]).finally(() => clearTimeout(timer));
}

/** Flood 4: slowloris — slow and idle connections are cut after the timeouts, on every listener. */
export function slowConnections(ctx: FloodContext): void {
  let pki: Awaited<ReturnType<typeof testPki>>;
  const open: SlowConnection[] = [];
  const slow = (port: number, tls: TlsIdentity, how: SlowKind) => {
    const c = slowConnection(port, tls, how);
    open.push(c);
    return c;
  };
  before(async () => (pki = await testPki()));
  afterEach(() => open.splice(0).forEach((c) => c.stop()));

  const listeners = () => {
    const s = ctx.services();
    return [
      {
        name: 'app public',
        port: s.app.publicPort,
        tls: { ca: pki.ca.cert },
        path: '/v1/presence',
      },
      {
        name: 'app internal',
        port: s.app.internalPort,
        tls: { ca: pki.ca.cert, cert: pki.policeBackend.cert, key: pki.policeBackend.key },
        path: '/internal/v1/beacons/SB-1/enable',
      },
      {
        name: 'police officer',
        port: s.police.officerPort,
        tls: { ca: pki.ca.cert },
        path: '/api/session',
      },
      {
        name: 'police internal',
        port: s.police.internalPort,
        tls: { ca: pki.ca.cert, cert: pki.appBackend.cert, key: pki.appBackend.key },
        path: '/internal/v1/alerts',
      },
    ];
  };

  /** What real clients of each listener do meanwhile: all must be served. */
  const legitimate = async () => {
    const s = ctx.services();
    const h = { backend: s.app, clock: s.clock };
    const answers = await Promise.all([
      presence(h, new Uint8Array(randomBytes(32)), []).then((r) => r.status),
      appInternal(h, '/healthz', 'GET').then((r) => r.status),
      httpsRequest(s.police.officerPort, 'GET', '/healthz', { ca: pki.ca.cert }).then(
        (r) => r.status,
      ),
      httpsRequest(
        s.police.internalPort,
        'POST',
        '/internal/v1/alerts',
        { ca: pki.ca.cert, cert: pki.appBackend.cert, key: pki.appBackend.key },
        JSON.stringify(alertMessage()),
        { 'content-type': 'application/json', 'idempotency-key': 'k1' },
      ).then((r) => r.status),
    ]);
    assert.deepEqual(answers, [202, 200, 200, 200]);
  };

  it('cuts a connection that never handshakes, one idle after its handshake, and headers sent byte by byte; serves real clients meanwhile', async () => {
    const held = listeners().flatMap((l) => [
      { l, why: 'no handshake', c: slow(l.port, l.tls, { kind: 'no-handshake' }) },
      { l, why: 'idle', c: slow(l.port, l.tls, { kind: 'idle' }) },
      {
        l,
        why: 'slow headers',
        c: slow(l.port, l.tls, { kind: 'headers', path: l.path, everyMs: 20 }),
      },
    ]);
    await legitimate();
    for (const { l, why, c } of held) {
      const end = await cut(c);
      const at = `${l.name}, ${why}`;
      if (why === 'no handshake') {
        assert.equal(end.secured, false, at);
        assert.ok(end.ms >= SHORT_LIMITS.handshakeTimeoutMs, `${at}: cut at ${end.ms} ms`);
      } else {
        assert.equal(end.secured, true, at);
        assert.ok(end.ms >= SHORT_LIMITS.headersTimeoutMs, `${at}: cut at ${end.ms} ms`);
      }
      if (why === 'slow headers') assert.match(String(end.answer), / 408 /, at);
    }
    await legitimate();
  });

  it('cuts a body sent byte by byte once the request timeout passes (presence and alert intake)', async () => {
    const [app, , , police] = listeners();
    const bodies = [
      slow(app!.port, app!.tls, {
        kind: 'body',
        path: '/v1/presence',
        length: PRESENCE_BODY_LENGTH,
        contentType: 'application/octet-stream',
        everyMs: 20,
      }),
      slow(police!.port, police!.tls, {
        kind: 'body',
        path: '/internal/v1/alerts',
        length: 1000,
        contentType: 'application/json',
        everyMs: 20,
      }),
    ];
    await legitimate();
    for (const c of bodies) {
      const end = await cut(c);
      assert.match(String(end.answer), / 408 /);
      assert.ok(end.ms >= SHORT_LIMITS.requestTimeoutMs, `cut at ${end.ms} ms`);
    }
  });

  it('closes connections beyond the cap at once, and serves again when the timeouts have cut the holders', async () => {
    const [app] = listeners();
    const holders = Array.from({ length: SHORT_LIMITS.maxConnections }, () =>
      slow(app!.port, app!.tls, { kind: 'idle' }),
    );
    let secured = 0;
    for (const c of holders) void c.ended.then((e) => e.secured && secured++);
    // Connected after the holders, so accepted after them (one listen queue, first in first out).
    const extra = slow(app!.port, app!.tls, { kind: 'idle' });
    const refused = await cut(extra);
    assert.equal(refused.secured, false, 'the connection over the cap never got a handshake');
    const ends = await Promise.all(holders.map(cut));
    assert.equal(secured, SHORT_LIMITS.maxConnections);
    assert.ok(ends.every((e) => e.ms >= SHORT_LIMITS.headersTimeoutMs));
    const s = ctx.services();
    await waitFor('a presence answer', async () => {
      const h = { backend: s.app, clock: s.clock };
      const r = await presence(h, new Uint8Array(randomBytes(32)), []).catch(() => undefined);
      return r?.status === 202;
    });
  });

  it('answers what the HTTP parser refuses with a code on every listener: a garbage request line, oversize headers', async () => {
    /** Raw bytes over TLS; the answer's status and body once the server closes. */
    const raw = (port: number, tls: TlsIdentity, bytes: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        let text = '';
        const socket = tlsConnect(
          { port, host: '127.0.0.1', servername: 'localhost', ...tls },
          () => socket.write(bytes),
        );
        socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
        socket.on('error', reject);
        socket.on('close', () =>
          resolve({
            status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0),
            body: text.slice(text.indexOf('\r\n\r\n') + 4),
          }),
        );
      });
    for (const l of listeners()) {
      const garbage = await raw(l.port, l.tls, 'NOT HTTP AT ALL\r\n\r\n');
      assert.deepEqual([garbage.status, garbage.body], [400, '{"error":"BAD_REQUEST"}'], l.name);
      const huge = `GET ${l.path} HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`;
      const oversize = await raw(l.port, l.tls, huge);
      assert.deepEqual(
        [oversize.status, oversize.body],
        [431, '{"error":"HEADERS_TOO_LARGE"}'],
        l.name,
      );
    }
  });
}
