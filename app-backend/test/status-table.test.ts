import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { type StatusInput, relayStatus } from '../src/lifecycle.js';
import { StatusTable } from '../src/status-table.js';

const T0 = 1_795_400_000_000;
const MIN = 60_000;

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
/** A UUID from a number: v4-looking, or v7-looking (time first) to stress the id hashing. */
const uuid = (n: number, v7 = false) => {
  const h = v7
    ? (0x0190_0000_0000 + n).toString(16).padStart(12, '0') + sha(`u${n}`)
    : sha(`u${n}`);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
};

const time = fc.integer({ min: T0 - 86_400_000, max: T0 + 86_400_000 });
const input: fc.Arbitrary<StatusInput> = fc.record({
  state: fc.constantFrom('registered', 'monitoring'),
  windowSeconds: fc.integer({ min: 10, max: 86_400 }),
  lastPresenceAt: fc.option(time),
  gap: fc.option(
    fc.record({ status: fc.constantFrom('provisional', 'confirmed'), gapStartedAt: time }),
  ),
  deadline: fc.option(time),
  absences: fc.array(
    fc
      .tuple(time, fc.integer({ min: 1, max: 86_400_000 }))
      .map(([startsAt, length]) => ({ startsAt, endsAt: startsAt + length })),
    { maxLength: 3 },
  ),
});

/** The plain model: rows by id, a key held by one row at a time (the last one set). */
class Model {
  readonly rows = new Map<string, { key: string; input: StatusInput }>();
  set(id: string, key: string, input: StatusInput): void {
    for (const [other, row] of this.rows)
      if (other !== id && row.key === key) this.rows.delete(other);
    this.rows.set(id, { key, input });
  }
  status(key: string, now: number) {
    for (const row of this.rows.values()) if (row.key === key) return relayStatus(row.input, now);
    return undefined;
  }
}

describe('status table', () => {
  it('answers every key exactly as relayStatus answers the input it was given', () => {
    const table = new StatusTable();
    fc.assert(
      fc.property(input, time, (e, now) => {
        table.set(uuid(1), sha('k'), e);
        assert.deepEqual(table.status(sha('k'), now), relayStatus(e, now));
      }),
      { numRuns: 1000 },
    );
  });

  it('agrees with a Map model over random inserts, updates, key moves and deletions', () => {
    // Small pools so ids and keys meet often; a 16-cell start so the indexes grow and wrap.
    const ids = Array.from({ length: 40 }, (_, i) => uuid(i, i % 2 === 0));
    const keys = Array.from({ length: 40 }, (_, i) => sha(`k${i}`));
    const op = fc.oneof(
      fc.record({
        type: fc.constant('set' as const),
        id: fc.nat(ids.length - 1),
        key: fc.nat(keys.length - 1),
        input,
      }),
      fc.record({ type: fc.constant('delete' as const), id: fc.nat(ids.length - 1) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 300 }), time, (ops, now) => {
        const table = new StatusTable(16);
        const model = new Model();
        for (const o of ops) {
          const id = ids[o.id] as string;
          if (o.type === 'set') {
            table.set(id, keys[o.key] as string, o.input);
            model.set(id, keys[o.key] as string, o.input);
          } else assert.equal(table.delete(id), model.rows.delete(id));
          assert.equal(table.size, model.rows.size);
        }
        for (const id of ids) assert.equal(table.has(id), model.rows.has(id));
        for (const key of keys) assert.deepEqual(table.status(key, now), model.status(key, now));
      }),
      { numRuns: 300 },
    );
  });

  it('keeps 100,000 rows right through chunk boundaries, index growth and heavy churn', () => {
    // A seeded generator: the same sequence every run, so a failure can be replayed.
    let seed = 42;
    const random = () => (seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0) / 2 ** 32;
    const table = new StatusTable();
    const model = new Map<string, { key: string; input: StatusInput }>();
    const row = (i: number, version: number): StatusInput => ({
      state: 'monitoring',
      windowSeconds: 360,
      lastPresenceAt: T0 - i - version,
      gap: null,
      deadline: null,
      absences: [],
    });
    const N = 100_000;
    const ids = Array.from({ length: N }, (_, i) => uuid(i, i % 3 === 0));
    const keys = Array.from({ length: N }, (_, i) => sha(`k${i}`));
    // A re-registration's key: the old key with its first digits changed by the round.
    const moved = (i: number, round: number) => `${round}${(keys[i] as string).slice(1)}`;
    for (let i = 0; i < N; i++) {
      const id = ids[i] as string;
      const r = { key: keys[i] as string, input: row(i, 0) };
      table.set(id, r.key, r.input);
      model.set(id, r);
    }
    for (let round = 1; round <= 3; round++) {
      for (let n = 0; n < N / 2; n++) {
        const i = Math.floor(random() * N);
        const id = ids[i] as string;
        const pick = random();
        if (pick < 0.3) {
          assert.equal(table.delete(id), model.delete(id));
        } else {
          // Same key, or a new one (re-registration): both must leave no stale index cell.
          const key = pick < 0.6 ? (keys[i] as string) : moved(i, round);
          const r = { key, input: row(i, round) };
          table.set(id, key, r.input);
          model.set(id, r);
        }
      }
      assert.equal(table.size, model.size);
    }
    const now = T0 + MIN;
    for (let i = 0; i < N; i++) {
      const id = ids[i] as string;
      const r = model.get(id);
      assert.equal(table.has(id), r !== undefined);
      if (r) assert.deepEqual(table.status(r.key, now), relayStatus(r.input, now));
      for (let round = 0; round <= 3; round++) {
        const key = round ? moved(i, round) : (keys[i] as string);
        if (key !== r?.key) assert.equal(table.status(key, now), undefined);
      }
    }
  });

  it('holds a million quarantines in under 70 bytes each', () => {
    const table = new StatusTable();
    const e: StatusInput = {
      state: 'monitoring',
      windowSeconds: 360,
      lastPresenceAt: T0,
      gap: null,
      deadline: null,
      absences: [],
    };
    for (let i = 0; i < 1_000_000; i++) {
      const h = i.toString(16).padStart(32, '0');
      const id = `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
      table.set(id, h + h, e);
    }
    assert.equal(table.size, 1_000_000);
    assert.ok(table.byteLength / table.size < 70, `${table.byteLength / table.size} bytes a row`);
  });

  it('refuses a malformed key hash or id with a stable code, and finds nothing for one', () => {
    const table = new StatusTable();
    const e: StatusInput = {
      state: 'registered',
      windowSeconds: 360,
      lastPresenceAt: null,
      gap: null,
      deadline: null,
      absences: [],
    };
    assert.throws(() => table.set(uuid(1), 'xyz', e), { code: 'BAD_KEY_HASH' });
    assert.throws(() => table.set(uuid(1), `${sha('k').slice(0, 63)}g`, e), {
      code: 'BAD_KEY_HASH',
    });
    assert.throws(() => table.set('not-a-uuid', sha('k'), e), { code: 'BAD_QUARANTINE_ID' });
    assert.throws(() => table.set(uuid(1).replace('-', 'x'), sha('k'), e), {
      code: 'BAD_QUARANTINE_ID',
    });
    assert.equal(table.size, 0);
    table.set(uuid(1), sha('k'), e);
    assert.equal(table.status(sha('k').slice(0, 32), T0), undefined);
    assert.equal(table.status(`${sha('k').slice(0, 63)}z`, T0), undefined);
    assert.equal(table.delete('not-a-uuid'), false);
    assert.equal(table.status(sha('k'), T0)?.code, 'not_monitored');
    assert.equal(table.status(sha('k').toUpperCase(), T0)?.code, 'not_monitored');
  });
});
