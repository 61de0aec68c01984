import assert from 'node:assert/strict';
import { type Server, createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { type MtlsPeer, MtlsClient, mtlsPost } from '../../backend-kit/mtls-client.js';
import { type IssuedCert, createCa, issueCertificate } from '../../deploy/pki/pki.js';
import { testPki } from '../support/pki.js';

const DAY_MS = 86_400_000;

/** A stand-in peer with a given certificate, counting the requests that reach it. */
async function fakePeer(
  cert: IssuedCert,
): Promise<{ server: Server; port: number; seen: () => number }> {
  const pki = await testPki();
  let seen = 0;
  const server = createServer(
    {
      cert: cert.cert,
      key: cert.key,
      ca: pki.ca.cert,
      requestCert: true,
      rejectUnauthorized: true,
    },
    (req, res) => {
      seen++;
      req.resume();
      req.on('end', () =>
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}'),
      );
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port, seen: () => seen };
}

interface ServerCase {
  readonly name: string;
  readonly cert: (callee: string, callerCert: IssuedCert) => Promise<IssuedCert>;
  /** The client's error (code and message) for a server it must refuse; none for the right one. */
  readonly refusal?: RegExp;
}

const onLoopback = { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] };
const ourLeaf = async (o: {
  cn: string;
  usages?: ('client' | 'server')[];
  notBefore?: Date;
  days?: number;
}) =>
  issueCertificate((await testPki()).ca, {
    commonName: o.cn,
    usages: o.usages ?? ['server'],
    validDays: o.days ?? 20,
    ...onLoopback,
    ...(o.notBefore ? { notBefore: o.notBefore } : {}),
  });

/** Every server certificate a backend's outgoing calls must refuse before sending a byte, then the right one. */
const SERVERS: ServerCase[] = [
  {
    name: 'another CA (right identity)',
    cert: async (cn) =>
      issueCertificate(await createCa({ commonName: 'Impostor CA', validDays: 30 }), {
        commonName: cn,
        usages: ['server'],
        validDays: 20,
        ...onLoopback,
      }),
    refusal: /^UNABLE_TO_VERIFY_LEAF_SIGNATURE /,
  },
  {
    name: 'our CA, another identity',
    cert: () => ourLeaf({ cn: 'intruder' }),
    refusal: /unexpected server identity/,
  },
  {
    name: "our CA, the caller's own certificate",
    cert: (_cn, caller) => Promise.resolve(caller),
    refusal: /unexpected server identity/,
  },
  {
    name: 'expired (our CA, right identity)',
    cert: (cn) => ourLeaf({ cn, notBefore: new Date(Date.now() - 30 * DAY_MS), days: 1 }),
    refusal: /^CERT_HAS_EXPIRED /,
  },
  {
    name: 'not yet valid (our CA, right identity)',
    cert: (cn) => ourLeaf({ cn, notBefore: new Date(Date.now() + DAY_MS), days: 1 }),
    refusal: /^CERT_NOT_YET_VALID /,
  },
  {
    name: 'client-only usage (our CA, right identity)',
    cert: (cn) => ourLeaf({ cn, usages: ['client'] }),
    refusal: /^INVALID_PURPOSE /,
  },
  {
    name: 'the right peer',
    cert: async (cn) => {
      const pki = await testPki();
      return cn === 'police-backend' ? pki.policeBackend : pki.appBackend;
    },
  },
];

describe('mutual TLS: outgoing calls reach only the right peer', function () {
  this.timeout(30_000);
  const directions = [
    // Alert delivery (keep-alive client) and the police backend's commands (one-shot POSTs).
    {
      name: 'app backend → police backend',
      caller: 'appBackend',
      callee: 'police-backend',
      path: '/internal/v1/alert-batches',
    },
    {
      name: 'police backend → app backend',
      caller: 'policeBackend',
      callee: 'app-backend',
      path: '/internal/v1/beacons/SB-1/enable',
    },
  ] as const;
  for (const d of directions) {
    describe(d.name, () => {
      for (const s of SERVERS) {
        it(`${s.refusal ? 'refuses' : 'calls'} a server with ${s.name}`, async () => {
          const pki = await testPki();
          const peer = await fakePeer(await s.cert(d.callee, pki[d.caller]));
          const target: MtlsPeer = {
            url: `https://localhost:${peer.port}`,
            identity: d.callee,
            tls: { cert: pki[d.caller].cert, key: pki[d.caller].key, ca: pki.ca.cert },
          };
          const client = new MtlsClient(target);
          try {
            for (const call of [
              () => mtlsPost(target, d.path, '{}'),
              () => client.post(d.path, '{}'),
            ]) {
              if (!s.refusal) assert.equal((await call()).status, 200);
              else
                await assert.rejects(call(), (e: NodeJS.ErrnoException) => {
                  assert.match(`${e.code} ${e.message}`, s.refusal as RegExp);
                  return true;
                });
            }
            assert.equal(peer.seen(), s.refusal ? 0 : 2, 'requests that reached the server');
          } finally {
            client.close();
            peer.server.closeAllConnections();
            await new Promise<void>((resolve) => peer.server.close(() => resolve()));
          }
        });
      }
    });
  }
});
