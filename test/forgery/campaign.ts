import { randomBytes, randomInt } from 'node:crypto';
import { TestBeacon, authorityJwt } from '../../app-backend/test/harness.js';
import { encodePresenceBody } from '../../protocol/presence.js';
import { httpsRequest } from '../support/https-client.js';
import { testPki } from '../support/pki.js';
import { type KsResult, ksTest } from '../support/ks.js';
import type { Exchange, PresenceClient } from './wire.js';

/** Where a running app backend listens. */
export interface Ports {
  readonly publicPort: number;
  readonly internalPort: number;
}

/**
 * Register a quarantine for `beacon` (health authority JWT), enable it (police backend over
 * mutual TLS) and send its first token: a monitored quarantine with presence at `nowMs`.
 */
export async function enrol(ports: Ports, beacon: TestBeacon, nowMs: number): Promise<void> {
  const pki = await testPki();
  const body = beacon.registration();
  const r = await httpsRequest(
    ports.publicPort,
    'POST',
    '/v1/quarantines',
    { ca: pki.ca.cert },
    body,
    {
      authorization: `Bearer ${authorityJwt('POST /v1/quarantines', body, nowMs)}`,
      'content-type': 'application/json',
    },
  );
  if (r.status !== 201) throw new Error(`registration refused: ${r.status}`);
  const police = { ca: pki.ca.cert, cert: pki.policeBackend.cert, key: pki.policeBackend.key };
  const e = await httpsRequest(
    ports.internalPort,
    'POST',
    `/internal/v1/beacons/${beacon.beaconId}/enable`,
    police,
  );
  if (e.status !== 200) throw new Error(`enable refused: ${e.status}`);
  const p = await httpsRequest(
    ports.publicPort,
    'POST',
    '/v1/presence',
    { ca: pki.ca.cert },
    encodePresenceBody(beacon.skTPast, [beacon.token(nowMs)]),
  );
  if (p.status !== 202) throw new Error(`first presence refused: ${p.status}`);
}

export type Kind = 'dummy' | 'real';

/** `n` dummy and `n` real requests in a uniformly random order (Fisher–Yates on the system CSPRNG). */
export const interleaved = (n: number): Kind[] => shuffled<Kind>(['dummy', 'real'], n);

/**
 * Request bodies as relays send them: a dummy is a fresh random key and no tokens; a real one is
 * a registered person's key with a fresh token from their beacon, the people taken in turn.
 */
export function bodies(people: readonly TestBeacon[], now: () => number) {
  let next = 0;
  return {
    dummy: () => encodePresenceBody(new Uint8Array(randomBytes(32)), []),
    real: () => {
      const b = people[next++ % people.length] as TestBeacon;
      return encodePresenceBody(b.skTPast, [b.token(now())]);
    },
  };
}

/**
 * Two more kinds that split the real request's path in two: a registered person's key without
 * tokens (status lookup and sealed answer, as a relay that heard nothing sends), and an unknown
 * key with a token (rate limit and queue, random answer).
 */
export function diagnosticBodies(people: readonly TestBeacon[], now: () => number) {
  let next = 0;
  const stranger = new TestBeacon();
  return {
    'registered key, no token': () =>
      encodePresenceBody((people[next++ % people.length] as TestBeacon).skTPast, []),
    'unknown key, one token': () =>
      encodePresenceBody(new Uint8Array(randomBytes(32)), [stranger.token(now())]),
  };
}

/** Send `order` one request at a time on one connection; every body is built before its clock starts. */
export async function exchanges<K extends string>(
  client: PresenceClient,
  order: readonly K[],
  make: Record<K, () => Buffer>,
): Promise<Record<K, Exchange[]>> {
  const out = Object.fromEntries(Object.keys(make).map((k) => [k, []])) as unknown as Record<
    K,
    Exchange[]
  >;
  for (const kind of order) {
    const body = make[kind]();
    out[kind].push(await client.send(body));
  }
  return out;
}

/** `n` of each of `kinds` in a uniformly random order. */
export function shuffled<K extends string>(kinds: readonly K[], n: number): K[] {
  const order = kinds.flatMap((k) => Array.from({ length: n }, () => k));
  for (let i = order.length - 1; i > 0; i--) {
    const j = randomInt(i + 1);
    [order[i], order[j]] = [order[j] as K, order[i] as K];
  }
  return order;
}

export const MEASURES = {
  'request bytes (TLS, on the wire)': (e: Exchange) => e.requestBytes,
  'answer bytes (TLS, on the wire)': (e: Exchange) => e.answerBytes,
  'answer time on the wire, µs': (e: Exchange) => e.wireMicros,
  'round trip at the client, µs': (e: Exchange) => e.roundTripMicros,
} as const;

export type Measure = keyof typeof MEASURES;

export interface MeasureResult extends KsResult {
  readonly measure: Measure;
  readonly dummyMedian: number;
  /** The median of the kind compared with the dummies (real, unless another was given). */
  readonly realMedian: number;
}

export function median(values: readonly number[]): number {
  const s = Float64Array.from(values).sort();
  const mid = s.length >> 1;
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** The two-sample KS test of dummy against real (or `other`) for every measure. */
export function compare(
  samples: { readonly dummy: readonly Exchange[]; readonly real: readonly Exchange[] },
  other: readonly Exchange[] = samples.real,
): MeasureResult[] {
  return (Object.keys(MEASURES) as Measure[]).map((measure) => {
    const pick = MEASURES[measure];
    const dummy = samples.dummy.map(pick);
    const real = other.map(pick);
    return {
      measure,
      ...ksTest(dummy, real),
      dummyMedian: median(dummy),
      realMedian: median(real),
    };
  });
}

/** A p-value to three digits; below what a double holds, as a bound. */
const formatP = (p: number): string => (p === 0 ? 'p < 1e-300' : `p = ${p.toPrecision(3)}`);

/** One line per measure, for a terminal or a test's output. */
export function formatResults(results: readonly MeasureResult[], other = 'real'): string {
  return results
    .map(
      (r) =>
        `${r.measure.padEnd(34)} D = ${r.d.toFixed(4)}  ${formatP(r.p).padEnd(13)} ` +
        `n = ${r.n}, m = ${r.m}  median dummy ${r.dummyMedian.toFixed(1)} / ${other} ${r.realMedian.toFixed(1)}`,
    )
    .join('\n');
}
