import assert from 'node:assert/strict';
import { Agent, request } from 'node:https';
import fc from 'fast-check';
import type { Database } from '../../backend-kit/db.js';
import { databaseTargets } from '../../test/support/databases.js';
import { testPki } from '../../test/support/pki.js';
import {
  type Alert,
  type AlertMessage,
  QUEUES,
  type Queue,
  REVIEWABLE,
  type QueueCounts,
} from '../src/alerts.js';
import {
  type Filter,
  MIN,
  type ReviewState,
  addBeaconRecords,
  clearAlerts,
  expectedOrder,
  lastAuditSeq,
  openAlerts,
  setStates,
  storeAlerts,
} from './alert-fixtures.js';
import { type PoliceHarness, type Session, T0, signIn, startPolice } from './harness.js';

/** Cases per database in the normal run; PROPERTY_RUNS raises it for a deep run. */
const RUNS = Number(process.env.PROPERTY_RUNS ?? 20);

interface Answer {
  readonly status: number;
  readonly body: string;
  json<T = unknown>(): T;
}

interface Page {
  readonly alerts: Alert[];
  readonly counts: QueueCounts;
  readonly countsAt: number;
}

/** One open (or reviewed) alert of a generated queue; few distinct times, so the order's ties matter. */
const item = fc.record({
  id: fc.uuid({ version: 4 }),
  kind: fc.constantFrom(...REVIEWABLE),
  reasons: fc.constantFrom(
    'low_battery',
    'clock_drift',
    'battery_depleted',
    'rebooted,clock_not_set',
  ),
  /** A later repeat says the battery is now depleted: the alert moves up its queue. */
  worse: fc.boolean(),
  at: fc.integer({ min: 0, max: 4 }),
  batch: fc.integer({ min: 0, max: 2 }),
  state: fc.constantFrom<'open' | ReviewState>(
    'open',
    'open',
    'open',
    'acknowledged',
    'dispatched',
    'resolved',
  ),
});
const dataset = fc.uniqueArray(item, {
  selector: (i) => i.id,
  maxLength: 40,
  size: 'medium',
});
type Item = typeof item extends fc.Arbitrary<infer T> ? T : never;

const DETAIL: Record<Item['kind'], (i: Item) => AlertMessage['detail']> = {
  NO_PRESENCE: () => ({ lastPresenceAt: T0 - 20 * MIN, graceSeconds: 600 }),
  BEACON_FAULT: (i) => ({ reasons: i.reasons, batteryPercent: 9 }),
  SUSPECTED_SPOOFING: () => ({ invalidTokens: 5, since: T0 - 30 * MIN }),
  RELAY_SILENT: () => ({ silentFrom: T0 - 400 * MIN, silentUntil: null }),
};

/** Store the items in up to three intake batches (arrival-time ties), then their repeats and review states. */
async function load(db: Database, items: readonly Item[]): Promise<void> {
  await clearAlerts(db);
  const messages = items.map((i): AlertMessage => ({
    alertId: i.id,
    kind: i.kind,
    beaconId: 'SB-1',
    occurredAt: T0 + i.at * MIN,
    gapStartedAt: null,
    relatedAlertId: null,
    detail: DETAIL[i.kind](i),
  }));
  for (const batch of [0, 1, 2])
    await storeAlerts(
      db,
      messages.filter((_m, n) => items[n]?.batch === batch),
      T0 + 10 * MIN + batch * MIN,
    );
  const repeats = items
    .filter((i) => i.worse)
    .map((i): AlertMessage => ({
      alertId: `${i.id.slice(0, 24)}${'f'.repeat(12)}`,
      kind: 'ALERT_UPDATED',
      beaconId: 'SB-1',
      occurredAt: T0 + 20 * MIN,
      gapStartedAt: null,
      relatedAlertId: i.id,
      detail: { reasons: 'battery_depleted', batteryPercent: 1 },
    }));
  await storeAlerts(db, repeats, T0 + 20 * MIN);
  await setStates(
    db,
    items.flatMap((i) =>
      i.state === 'open'
        ? []
        : [
            {
              id: i.id,
              state: i.state,
              ...(i.state === 'resolved' ? { outcome: 'false_alarm' } : {}),
            },
          ],
    ),
  );
}

for (const target of databaseTargets()) {
  describe(`alert queue paging (limit, after, counts) on ${target.name}`, function () {
    // A deep run (PROPERTY_RUNS) takes longer than the normal one.
    this.timeout(Math.max(120_000, RUNS * 5_000));
    let db: Database;
    let h: PoliceHarness;
    let officer: Session;

    before(async () => {
      db = await target.open();
      h = await startPolice(db);
      await addBeaconRecords(db);
      officer = await signIn(h, 'officer1');
      agent = new Agent({ keepAlive: true, maxSockets: 1, ca: (await testPki()).ca.cert });
    });
    after(async () => {
      agent?.destroy();
      await h?.backend.close();
      await db?.close();
    });

    // One kept-alive connection: a TLS handshake per request would cost more than the request.
    let agent: Agent;
    const get = (query: string, retry = true): Promise<Answer> =>
      new Promise((resolve, reject) => {
        const req = request(
          {
            host: '127.0.0.1',
            port: h.backend.officerPort,
            path: `/api/alerts?${query}`,
            servername: 'localhost',
            agent,
            headers: { cookie: officer.cookie },
          },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => {
              const body = Buffer.concat(chunks).toString('utf8');
              resolve({
                status: res.statusCode ?? 0,
                body,
                json: <T>() => JSON.parse(body) as T,
              });
            });
          },
        );
        // The server may close an idle kept-alive connection as it is reused: a GET can be sent again.
        req.on('error', (err: NodeJS.ErrnoException) =>
          retry && req.reusedSocket && err.code === 'ECONNRESET'
            ? get(query, false).then(resolve, reject)
            : reject(err),
        );
        req.end();
      });
    const page = async (query: string): Promise<Page> => {
      const r = await get(query);
      assert.equal(r.status, 200, `${query}: ${r.body}`);
      return r.json<Page>();
    };
    const query = (params: Record<string, string | number | undefined>) =>
      new URLSearchParams(
        Object.entries(params).flatMap(([k, v]) =>
          v === undefined ? [] : [[k, String(v)] as [string, string]],
        ),
      ).toString();
    const expectedCounts = async (filter: Filter): Promise<QueueCounts> => ({
      violation: (await openAlerts(db, 'violation', filter)).length,
      maintenance: (await openAlerts(db, 'maintenance', filter)).length,
    });

    /** Every page of one queue, following `after` until a short page; checks each page's counts. */
    async function walk(queue: Queue, limit: number, filter: Filter) {
      const counts = await expectedCounts(filter);
      const pages: string[][] = [];
      let after: string | undefined;
      for (;;) {
        const p = await page(query({ view: 'queue', queue, limit, after, ...filter }));
        assert.deepEqual(p.counts, counts, 'counts: every open alert, not the page');
        assert.ok(p.alerts.length <= limit, 'at most limit');
        assert.ok(p.alerts.every((a) => a.queue === queue && a.state !== 'resolved'));
        pages.push(p.alerts.map((a) => a.id));
        after = p.alerts.at(-1)?.id;
        if (p.alerts.length < limit || !after) return pages;
        assert.ok(pages.length <= 100, 'paging ends');
      }
    }

    it('pages of any size are disjoint and together the whole queue in order; counts are exact', async () => {
      await fc.assert(
        fc.asyncProperty(
          dataset,
          fc.constantFrom(...QUEUES),
          fc.integer({ min: 1, max: 12 }),
          fc.record(
            {
              kind: fc.constantFrom(...REVIEWABLE),
              from: fc.integer({ min: 0, max: 4 }).map((k) => T0 + k * MIN),
            },
            { requiredKeys: [] },
          ),
          async (items, queue, limit, filter) => {
            await load(db, items);
            const auditFrom = await lastAuditSeq(db);
            const pages = await walk(queue, limit, filter);
            const all = pages.flat();
            assert.equal(new Set(all).size, all.length, 'no alert on two pages');
            assert.deepEqual(
              all,
              (await openAlerts(db, queue, filter)).map((a) => a.id),
            );
            // Both queues at once: the first `limit` of each, merged in queue order.
            const both = await page(query({ view: 'queue', limit, ...filter }));
            const firsts = await Promise.all(
              QUEUES.map(async (q) => (await openAlerts(db, q, filter)).slice(0, limit)),
            );
            assert.deepEqual(
              both.alerts.map((a) => a.id),
              firsts
                .flat()
                .sort(expectedOrder)
                .map((a) => a.id),
            );
            // Every page was an access to addresses: one audit entry each, with its size.
            const { rows } = await db.query<{ detail: string }>(
              "SELECT detail FROM audit_log WHERE seq > $1 AND action = 'address.viewed' ORDER BY seq",
              [auditFrom],
            );
            assert.deepEqual(
              rows.map((r) => (JSON.parse(r.detail) as { count: number }).count),
              [...pages.map((p) => p.length), both.alerts.length],
            );
          },
        ),
        { numRuns: RUNS, seed: 20_261_129 },
      );
    });

    it('continues after an alert resolved since, takes the cursor in any case, and finds nothing after an unknown one', async () => {
      const items = fc.sample(item, { numRuns: 12, seed: 3 });
      await load(
        db,
        items.map((i) => ({ ...i, kind: 'NO_PRESENCE' as const, state: 'open' as const })),
      );
      const order = (await openAlerts(db, 'violation')).map((a) => a.id);
      assert.ok(order.length >= 6, 'enough alerts for three pages');
      const first = await page(query({ view: 'queue', queue: 'violation', limit: 3 }));
      assert.deepEqual(
        first.alerts.map((a) => a.id),
        order.slice(0, 3),
      );
      const cursor = order[2] as string;
      await setStates(db, [{ id: cursor, state: 'resolved', outcome: 'false_alarm' }]);
      const next = await page(
        query({ view: 'queue', queue: 'violation', limit: 3, after: cursor }),
      );
      assert.deepEqual(
        next.alerts.map((a) => a.id),
        order.slice(3, 6),
        'nothing skipped, nothing repeated',
      );
      assert.equal(next.counts.violation, order.length - 1);
      const upper = await page(
        query({ view: 'queue', queue: 'violation', limit: 3, after: cursor.toUpperCase() }),
      );
      assert.deepEqual(upper.alerts, next.alerts);
      const unknown = await get(
        query({ view: 'queue', queue: 'violation', after: '00000000-0000-4000-8000-00000000abcd' }),
      );
      assert.equal(unknown.status, 200);
      assert.deepEqual(unknown.json<Page>().alerts, []);
    });

    it('refuses bad paging parameters with 400 BAD_QUERY', async () => {
      const id = '0f0f0f0f-0000-4000-8000-000000000001';
      for (const bad of [
        `after=${id}`,
        `view=queue&after=${id}`,
        `view=history&queue=violation&after=${id}`,
        `view=history&after=${id}`,
        'view=queue&queue=violation&after=',
        'view=queue&queue=violation&after=not-a-uuid',
        `view=queue&queue=violation&after=${id.replaceAll('-', '')}`,
        `view=queue&queue=violation&after=${id}x`,
        `view=queue&queue=violation&after={${id}}`,
        `view=queue&queue=violation&after=${id}&after=${id}`,
        `view=queue&queue=violation&after=${encodeURIComponent("' OR 1=1 --")}`,
        'view=queue&limit=0',
        'view=queue&limit=-1',
        'view=queue&limit=1001',
        'view=queue&limit=abc',
        'view=queue&limit=1.5',
        'view=queue&limit=',
        'view=queue&limit=NaN',
        'view=queue&limit=Infinity',
        'view=queue&limit=10abc',
        'view=queue&limit=5&limit=6',
        'view=queue&limit[]=5',
        'view=queue&queue=both',
        'view=queue&queue=VIOLATION',
        'view=queue&offset=100',
        'view=queue&cursor=abc',
        'view=queue&page=2',
      ]) {
        const r = await get(bad);
        assert.deepEqual([r.status, r.json()], [400, { error: 'BAD_QUERY' }], bad);
      }
      for (const ok of ['view=queue&limit=1', 'view=queue&limit=1000', 'limit=7']) {
        assert.equal((await get(ok)).status, 200, ok);
      }
    });

    it('never answers 5xx to a fuzzed query string', async () => {
      await load(db, fc.sample(item, { numRuns: 20, seed: 5 }));
      const uuid = fc.uuid();
      const key = fc.oneof(
        fc.constantFrom('view', 'queue', 'kind', 'outcome', 'from', 'to', 'limit', 'after'),
        fc.string({ maxLength: 8 }),
      );
      const value = fc.oneof(
        fc.constantFrom(
          'queue',
          'history',
          'violation',
          'maintenance',
          'NO_PRESENCE',
          'false_alarm',
        ),
        fc.integer({ min: -5, max: 2000 }).map(String),
        fc.constantFrom(
          '1e3',
          '0x10',
          ' 5',
          '5 ',
          '+5',
          '-0',
          '9007199254740993',
          '1e400',
          '%',
          '%zz',
        ),
        uuid,
        uuid.map((u) => u.toUpperCase()),
        fc.string({ maxLength: 40 }),
        fc.string({ unit: 'binary', maxLength: 20 }),
      );
      // Raw: separators and stray escapes left in (they split and garble parameters); else all escaped.
      const keep = (raw: boolean) => (raw ? /[A-Za-z0-9%&=._~!$'()*+,;:@/?-]/ : /[A-Za-z0-9._~-]/);
      const encoded = (s: string, raw: boolean) =>
        [...Buffer.from(s, 'utf8')]
          .map((b) => {
            const c = String.fromCharCode(b);
            return b < 128 && keep(raw).test(c) ? c : `%${b.toString(16).padStart(2, '0')}`;
          })
          .join('');
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.tuple(key, value, fc.boolean()), { maxLength: 6 }),
          async (pairs) => {
            const q = pairs.map(([k, v, raw]) => `${encoded(k, raw)}=${encoded(v, raw)}`).join('&');
            const r = await get(q);
            assert.ok(r.status === 200 || r.status === 400, `${r.status} for ?${q}`);
            if (r.status === 400) return assert.deepEqual(r.json(), { error: 'BAD_QUERY' }, q);
            const body = r.json<Partial<Page>>();
            assert.ok(Array.isArray(body.alerts), q);
            if (body.counts) {
              // A queue page: open alerts only, each queue in order.
              for (const queue of QUEUES) {
                const inQueue: Alert[] = body.alerts.filter((a) => a.queue === queue);
                assert.deepEqual(inQueue, [...inQueue].sort(expectedOrder), q);
                assert.ok(inQueue.length <= body.counts[queue], q);
              }
              assert.ok(
                body.alerts.every((a) => a.state !== 'resolved' && a.queue !== null),
                q,
              );
            }
          },
        ),
        { numRuns: Math.round(2.5 * RUNS), seed: 20_261_129 },
      );
    });
  });
}
