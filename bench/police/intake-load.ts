/**
 * The load generator for `bench/police-intake.ts`, run as its own process so the server's CPU is
 * its own: posts app-backend alert messages over mutual TLS with autocannon, optionally with a
 * dashboard WebSocket client connected, and prints one JSON result.
 *
 * `node dist/bench/police/intake-load.js <config.json>` (see LoadConfig).
 */
import autocannon from 'autocannon';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { WebSocket } from 'ws';
import { beaconId } from './beacon-id.js';

export interface LoadConfig {
  readonly port: number;
  readonly seconds: number;
  readonly connections: number;
  /** A new TLS connection for every alert (as the app backend's sender does today), else keep-alive. */
  readonly freshConnections: boolean;
  readonly beacons: number;
  readonly tls: { readonly ca: string; readonly cert: string; readonly key: string };
  /** Alerts per request: above 1, batches to /internal/v1/alert-batches (as the app backend sends). */
  readonly perPost?: number;
  /** The officer listener and a session cookie: connect a dashboard live feed during the run. */
  readonly live?: { readonly port: number; readonly cookie: string };
}

const config = JSON.parse(readFileSync(process.argv[2] as string, 'utf8')) as LoadConfig;
const PER_POST = config.perPost ?? 1;

interface Sent {
  readonly body: string;
  readonly alertId: string;
  readonly kind: string;
  readonly beaconId: string;
  readonly occurredAt: number;
}

// The mix: mostly confirmed violations, some beacon faults and notes, updates to earlier alerts,
// and a few redeliveries (the app backend delivers at least once).
const MIX: readonly [string, number][] = [
  ['NO_PRESENCE', 0.6],
  ['BEACON_FAULT', 0.1],
  ['RELAY_SILENT', 0.03],
  ['SUSPECTED_SPOOFING', 0.02],
  ['RESOLVED_BY_EVIDENCE', 0.12],
  ['ALERT_UPDATED', 0.05],
  ['LATE_EVIDENCE', 0.03],
  ['FAULT_CLEARED', 0.03],
  ['REDELIVERY', 0.02],
];
const RELATED_TO: Record<string, readonly string[]> = {
  RESOLVED_BY_EVIDENCE: ['NO_PRESENCE', 'RELAY_SILENT'],
  LATE_EVIDENCE: ['NO_PRESENCE'],
  ALERT_UPDATED: ['NO_PRESENCE', 'BEACON_FAULT'],
  FAULT_CLEARED: ['BEACON_FAULT', 'SUSPECTED_SPOOFING'],
};
const counts: Record<string, number> = {};

/** Alerts sent earlier, by kind, that updates may refer to (a bounded window of the recent past). */
const earlier = new Map<string, Sent[]>();
const WINDOW = 2000;
// The newest alerts of a kind may still be in flight: updates refer only to older ones.
const SETTLED = config.connections * PER_POST * 2;
let sequence = 0;

function pickKind(): string {
  let r = Math.random();
  for (const [kind, p] of MIX) if ((r -= p) < 0) return kind;
  return 'NO_PRESENCE';
}

function pickEarlier(kinds: readonly string[]): Sent | undefined {
  const list = earlier.get(kinds[Math.floor(Math.random() * kinds.length)] as string) ?? [];
  const settled = list.length - SETTLED;
  return settled > 0 ? list[Math.floor(Math.random() * settled)] : undefined;
}

function remember(s: Sent): void {
  const list = earlier.get(s.kind) ?? [];
  list.push(s);
  if (list.length > WINDOW) list.shift();
  earlier.set(s.kind, list);
}

function detailFor(kind: string, now: number): Record<string, number | string | boolean | null> {
  switch (kind) {
    case 'NO_PRESENCE':
      return {
        lastPresenceAt: now - 1_560_000,
        provisionalAt: now - 1_200_000,
        confirmedAt: now,
        graceSeconds: 1200,
        afterAbsence: Math.random() < 0.05,
      };
    case 'BEACON_FAULT': {
      const r = Math.random();
      return r < 0.6
        ? { reasons: 'low_battery', batteryPercent: 12 }
        : r < 0.8
          ? { reasons: 'clock_drift', offsetSeconds: 95 }
          : { reasons: 'low_battery,battery_depleted', batteryPercent: 2 };
    }
    case 'RELAY_SILENT':
      return { silentFrom: now - 3_600_000, silentUntil: now - 60_000 };
    case 'SUSPECTED_SPOOFING':
      return { invalidTokens: 12, since: now - 600_000 };
    default:
      return {};
  }
}

/** The next alert message; updates refer to alerts sent earlier in the run. */
function nextMessage(): { body: string; id: string } {
  sequence++;
  const now = Date.now();
  let kind = pickKind();
  if (kind === 'REDELIVERY') {
    const again = pickEarlier(['NO_PRESENCE', 'BEACON_FAULT']);
    if (again) {
      counts.REDELIVERY = (counts.REDELIVERY ?? 0) + 1;
      return { body: again.body, id: again.alertId };
    }
    kind = 'NO_PRESENCE';
  }
  const relatedKinds = RELATED_TO[kind];
  const related = relatedKinds ? pickEarlier(relatedKinds) : undefined;
  if (relatedKinds && !related) kind = 'NO_PRESENCE';
  counts[kind] = (counts[kind] ?? 0) + 1;
  const alertId = randomUUID();
  let message: Record<string, unknown>;
  if (related) {
    const detail =
      kind === 'RESOLVED_BY_EVIDENCE'
        ? { lastPresenceAt: now - 30_000, coveredByEvidence: Math.random() < 0.3 }
        : kind === 'LATE_EVIDENCE'
          ? { evidenceUntil: now - 120_000 }
          : kind === 'ALERT_UPDATED'
            ? detailFor(related.kind, now)
            : {};
    message = {
      alertId,
      kind,
      beaconId: related.beaconId,
      occurredAt: now,
      gapStartedAt:
        kind === 'ALERT_UPDATED' && related.kind === 'NO_PRESENCE' ? now - 1_560_000 : null,
      relatedAlertId: related.alertId,
      detail,
    };
  } else {
    message = {
      alertId,
      kind,
      beaconId: beaconId(sequence % config.beacons),
      occurredAt: now,
      gapStartedAt: kind === 'NO_PRESENCE' ? now - 1_560_000 : null,
      relatedAlertId: null,
      detail: detailFor(kind, now),
    };
  }
  const body = JSON.stringify(message);
  if (!relatedKinds) {
    remember({
      body,
      alertId,
      kind,
      beaconId: message.beaconId as string,
      occurredAt: now,
    });
  }
  return { body, id: alertId };
}

/** A dashboard's live feed: counts alert pushes and how long after intake each one arrived. */
async function openLive(live: NonNullable<LoadConfig['live']>) {
  const lags: number[] = [];
  let pushes = 0;
  const ws = new WebSocket(`wss://localhost:${live.port}/api/live`, {
    headers: { cookie: live.cookie },
    ca: config.tls.ca,
  });
  ws.on('message', (data: Buffer) => {
    const m = JSON.parse(data.toString('utf8')) as { type: string; alert?: { updatedAt: number } };
    if (m.type !== 'alert' || !m.alert) return;
    pushes++;
    lags.push(Date.now() - m.alert.updatedAt);
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('message', () => resolve());
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`live: ${res.statusCode}`)));
  });
  return {
    close: () => ws.close(),
    result: () => {
      const s = lags.sort((a, b) => a - b);
      const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? null;
      return { pushes, lagP50: at(0.5), lagP99: at(0.99) };
    },
  };
}

/**
 * One request per new TLS connection, as `mtlsPost` sends (agent: false). Autocannon's own
 * reconnect mode does not count the answers it reconnects after, so this loop does it.
 */
async function freshConnections() {
  const latencies: number[] = [];
  let non2xx = 0;
  let errors = 0;
  const deadline = Date.now() + config.seconds * 1000;
  const one = (m: { body: string; id: string }) =>
    new Promise<number>((resolve) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: config.port,
          method: 'POST',
          path: '/internal/v1/alerts',
          servername: 'localhost',
          ...config.tls,
          agent: false,
          headers: {
            'content-type': 'application/json',
            'content-length': String(Buffer.byteLength(m.body)),
            'idempotency-key': m.id,
          },
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', () => resolve(0));
      req.end(m.body);
    });
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: config.connections }, async () => {
      while (Date.now() < deadline) {
        const t = process.hrtime.bigint();
        const status = await one(nextMessage());
        latencies.push(Number(process.hrtime.bigint() - t) / 1e6);
        if (status === 0) errors++;
        else if (status < 200 || status >= 300) non2xx++;
      }
    }),
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const s = latencies.sort((a, b) => a - b);
  const at = (q: number) => Math.round(s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? 0);
  return {
    requests: { total: s.length, average: s.length / seconds },
    non2xx,
    errors,
    timeouts: 0,
    latency: { p50: at(0.5), p99: at(0.99) },
  };
}

const live = config.live ? await openLive(config.live) : undefined;
const result = config.freshConnections
  ? await freshConnections()
  : await autocannon({
      url: `https://127.0.0.1:${config.port}`,
      connections: config.connections,
      duration: config.seconds,
      pipelining: 1,
      servername: 'localhost',
      tlsOptions: { ca: config.tls.ca, cert: config.tls.cert, key: config.tls.key },
      requests: [
        PER_POST > 1
          ? {
              method: 'POST',
              path: '/internal/v1/alert-batches',
              setupRequest: (req) => ({
                ...req,
                body: `{"alerts":[${Array.from({ length: PER_POST }, () => nextMessage().body).join(',')}]}`,
                headers: { 'content-type': 'application/json' },
              }),
            }
          : {
              method: 'POST',
              path: '/internal/v1/alerts',
              setupRequest: (req) => {
                const m = nextMessage();
                return {
                  ...req,
                  body: m.body,
                  headers: { 'content-type': 'application/json', 'idempotency-key': m.id },
                };
              },
            },
      ],
    });
// Pushes still in flight when the load stopped are let in before counting.
await new Promise((r) => setTimeout(r, 300));
const liveResult = live?.result();
live?.close();
process.stdout.write(
  JSON.stringify({
    requests: result.requests.total,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
    p50: result.latency.p50,
    p99: result.latency.p99,
    rps: result.requests.average,
    mix: counts,
    ...(liveResult ? { live: liveResult } : {}),
  }),
);
