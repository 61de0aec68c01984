import { createCa, issueCertificate } from '../../deploy/pki/pki.js';
import type { TlsClient } from '../support/https-client.js';
import { testPki } from '../support/pki.js';

/** What a listener must do with a client: refuse it at the handshake, at the route, or serve it. */
export type Expected = 'handshake' | 'forbidden' | 'accepted';

export interface ClientCase {
  readonly name: string;
  readonly expected: Expected;
  /** The client's TLS settings, made on first use (certificates take a moment to issue). */
  readonly tls: () => Promise<TlsClient>;
}

const DAY_MS = 86_400_000;

interface LeafSpec {
  readonly cn?: string;
  readonly usages?: ('client' | 'server')[];
  readonly notBefore?: () => Date;
  readonly days?: number;
  readonly foreign?: boolean;
}

/**
 * The mutual-TLS client matrix for a listener that serves only `caller` (CN `callerName`, from
 * our CA): every certificate that must fail, then the one that must pass. `callee` is the
 * listener's own backend, whose real certificate (our CA, another identity) must not pass either.
 */
export function clientCases(
  caller: 'appBackend' | 'policeBackend',
  callee: 'appBackend' | 'policeBackend',
  callerName: string,
): ClientCase[] {
  const once = <T>(make: () => Promise<T>): (() => Promise<T>) => {
    let made: Promise<T> | undefined;
    return () => (made ??= make());
  };
  const foreignCa = once(() => createCa({ commonName: 'Impostor CA', validDays: 30 }));
  const leaf = (spec: LeafSpec) =>
    once(async (): Promise<TlsClient> => {
      const pki = await testPki();
      const issuer = spec.foreign ? await foreignCa() : pki.ca;
      const c = await issueCertificate(issuer, {
        commonName: spec.cn ?? callerName,
        usages: spec.usages ?? ['client'],
        validDays: spec.days ?? 20,
        ...(spec.notBefore ? { notBefore: spec.notBefore() } : {}),
      });
      return { ca: pki.ca.cert, cert: c.cert, key: c.key };
    });
  const real = (who: 'appBackend' | 'policeBackend') =>
    once(async (): Promise<TlsClient> => {
      const pki = await testPki();
      return { ca: pki.ca.cert, cert: pki[who].cert, key: pki[who].key };
    });
  return [
    {
      name: 'no certificate',
      expected: 'handshake',
      tls: once(async () => ({ ca: (await testPki()).ca.cert })),
    },
    { name: 'another CA (right identity)', expected: 'handshake', tls: leaf({ foreign: true }) },
    {
      name: 'expired (our CA, right identity)',
      expected: 'handshake',
      tls: leaf({ notBefore: () => new Date(Date.now() - 30 * DAY_MS), days: 1 }),
    },
    {
      name: 'not yet valid (our CA, right identity)',
      expected: 'handshake',
      tls: leaf({ notBefore: () => new Date(Date.now() + DAY_MS), days: 1 }),
    },
    {
      name: 'server-only usage (our CA, right identity)',
      expected: 'handshake',
      tls: leaf({ usages: ['server'] }),
    },
    {
      name: 'wrong identity (our CA, another CN)',
      expected: 'forbidden',
      tls: leaf({ cn: 'intruder' }),
    },
    {
      name: "the listener's own certificate (our CA, its identity)",
      expected: 'forbidden',
      tls: real(callee),
    },
    { name: 'the right client', expected: 'accepted', tls: real(caller) },
  ];
}
