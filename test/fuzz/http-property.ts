import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Database } from '../../backend-kit/db.js';
import { type HttpResult, type TlsClient, httpsRequest } from '../support/https-client.js';
import { changedTables, tableNames, tableSums } from './checksums.js';
import { fuzzSeed } from './runs.js';

/** How a request proves who sends it: as a real client would, not at all, or wrongly. */
export type Auth = 'valid' | 'none' | 'wrong';

/** One route of one listener, with what a real client would send to it. */
export interface Endpoint {
  readonly listener: string;
  readonly method: string;
  /** The route as its router registers it, e.g. "/v1/quarantines/:beaconId/end". */
  readonly pattern: string;
  /** Served through Express (then checked against the routers) or by a handler of its own. */
  readonly express: boolean;
  /** A concrete path a real client would use; `pick` chooses among known beacons, alerts… */
  readonly path: (pick: number) => string;
  /** The body a real client would send (JSON value, or bytes); none when the route takes none. */
  readonly body?: (pick: number) => unknown;
}

export interface Listener {
  readonly name: string;
  readonly port: () => number;
  /** The TLS client (with its certificate, if any) and the headers for this kind of auth. */
  readonly client: (
    auth: Auth,
    body: Buffer | undefined,
    /** Method and path (no query) of the request, for credentials bound to it. */
    request: string,
  ) => {
    tls: TlsClient;
    headers: Record<string, string>;
  };
}

export interface FuzzTarget {
  readonly listeners: readonly Listener[];
  readonly endpoints: readonly Endpoint[];
  readonly db: Database;
  /** Let the work a request queued land before the tables are compared (e.g. validation). */
  readonly settle: () => Promise<void>;
  /** Tables a refusal of this endpoint writes by design (e.g. a failed sign-in is counted). */
  readonly writesOnRefusal?: (method: string, path: string) => readonly string[];
  /** Restore what an accepted request used up (e.g. sign in again after a sign-out). */
  readonly afterEach?: (e: Endpoint, r: HttpResult) => Promise<void>;
}

type BodySpec =
  | { kind: 'valid' }
  | { kind: 'none' }
  | { kind: 'field'; pick: number; value: unknown; drop: boolean }
  | { kind: 'json'; value: unknown }
  | { kind: 'bytes'; value: Uint8Array }
  | { kind: 'flip'; at: number; xor: number };

type PathSpec =
  | { kind: 'valid' }
  | { kind: 'param'; pick: number; segment: string }
  | { kind: 'suffix'; segment: string }
  | { kind: 'random'; segments: string[] };

export interface FuzzRequest {
  readonly endpoint: number;
  readonly pick: number;
  readonly method: string | null;
  readonly path: PathSpec;
  readonly query: string | null;
  readonly body: BodySpec;
  readonly contentType: string | null;
  readonly encoding: string | null;
  readonly chunked: boolean;
  readonly auth: Auth;
  readonly header: readonly [string, string] | null;
}

/** Methods the HTTP parser knows (an unknown one never reaches a route: Node answers it). */
const METHODS = [
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'DELETE',
  'PATCH',
  'OPTIONS',
  'TRACE',
  'PROPFIND',
  'MKCOL',
  'LOCK',
  'SEARCH',
  'PURGE',
] as const;

const segment = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 40 }).map(encodeURIComponent),
  fc.stringMatching(/^[A-Za-z0-9-]{0,40}$/),
  fc.constantFrom(
    '',
    '.',
    '..',
    '%00',
    '%ff',
    '%zz',
    '%',
    '%2e%2e',
    '%2F',
    '%c0%af',
    'SB-1',
    'x'.repeat(300),
    '00000000-0000-0000-0000-000000000000',
    'ffffffff-ffff-4fff-bfff-ffffffffffff',
    '-1',
    '1e308',
  ),
);

const printable = fc
  .string({ unit: 'grapheme-ascii', maxLength: 80 })
  .map((s) => s.replace(/[^\x20-\x7e]/g, ''));

const bodySpec: fc.Arbitrary<BodySpec> = fc.oneof(
  { weight: 4, arbitrary: fc.constant<BodySpec>({ kind: 'valid' }) },
  {
    weight: 5,
    arbitrary: fc
      .record({
        pick: fc.nat(),
        value: fc.jsonValue({ maxDepth: 2 }),
        drop: fc.boolean(),
      })
      .map((f): BodySpec => ({ kind: 'field', ...f })),
  },
  {
    weight: 2,
    arbitrary: fc.jsonValue({ maxDepth: 3 }).map((value): BodySpec => ({ kind: 'json', value })),
  },
  {
    weight: 2,
    arbitrary: fc
      .uint8Array({ maxLength: 600 })
      .map((value): BodySpec => ({ kind: 'bytes', value })),
  },
  {
    weight: 1,
    arbitrary: fc
      .record({ at: fc.nat(), xor: fc.integer({ min: 1, max: 255 }) })
      .map((f): BodySpec => ({ kind: 'flip', ...f })),
  },
  { weight: 1, arbitrary: fc.constant<BodySpec>({ kind: 'none' }) },
);

const pathSpec: fc.Arbitrary<PathSpec> = fc.oneof(
  { weight: 6, arbitrary: fc.constant<PathSpec>({ kind: 'valid' }) },
  {
    weight: 3,
    arbitrary: fc
      .record({ pick: fc.nat(), segment })
      .map((p): PathSpec => ({ kind: 'param', ...p })),
  },
  { weight: 1, arbitrary: segment.map((s): PathSpec => ({ kind: 'suffix', segment: s })) },
  {
    weight: 1,
    arbitrary: fc
      .array(segment, { maxLength: 5 })
      .map((segments): PathSpec => ({ kind: 'random', segments })),
  },
);

const query = fc.option(
  fc.oneof(
    fc.constantFrom(
      'view=history',
      'view=queue&queue=violations',
      'view=queue&view=history',
      'limit=0',
      'limit=abc',
      'limit=1e3',
      'days=9999',
      'after=x',
      'a[b]=1',
      'from=-1&to=1',
    ),
    fc
      .tuple(printable, printable)
      .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`),
  ),
  { freq: 3 },
);

/** Which part of a request is wrong: one of them alone (as a real client's bug would be), or any. */
const FOCUS = ['any', 'any', 'body', 'body', 'path', 'auth', 'method', 'headers', 'none'] as const;

/** Everything outside the focus as a real client sends it. */
function focused(c: FuzzRequest, focus: (typeof FOCUS)[number]): FuzzRequest {
  if (focus === 'any') return c;
  return {
    ...c,
    method: focus === 'method' ? c.method : null,
    path: focus === 'path' ? c.path : { kind: 'valid' },
    query: focus === 'path' ? c.query : null,
    body: focus === 'body' ? c.body : { kind: 'valid' },
    contentType: focus === 'headers' ? c.contentType : null,
    encoding: focus === 'headers' ? c.encoding : null,
    chunked: focus === 'headers' ? c.chunked : false,
    auth: focus === 'auth' ? c.auth : 'valid',
    header: focus === 'headers' ? c.header : null,
  };
}

export function fuzzRequest(endpoints: number): fc.Arbitrary<FuzzRequest> {
  return fc
    .tuple(anyRequest(endpoints), fc.constantFrom(...FOCUS))
    .map(([c, focus]) => focused(c, focus));
}

function anyRequest(endpoints: number): fc.Arbitrary<FuzzRequest> {
  return fc.record({
    endpoint: fc.nat(endpoints - 1),
    pick: fc.nat(),
    method: fc.option(fc.constantFrom(...METHODS), { freq: 4 }),
    path: pathSpec,
    query,
    body: bodySpec,
    contentType: fc.option(
      fc.oneof(
        fc.constantFrom(
          'application/json',
          'application/json; charset=utf-8',
          'application/json; charset=utf-16',
          'application/json; charset=latin1',
          'text/plain',
          'application/x-www-form-urlencoded',
          'application/octet-stream',
          'multipart/form-data; boundary=x',
          '*/*',
        ),
        printable,
      ),
      { freq: 3 },
    ),
    encoding: fc.option(fc.constantFrom('gzip', 'deflate', 'br', 'identity', 'x-unknown'), {
      freq: 8,
    }),
    chunked: fc.nat(5).map((n) => n === 0),
    auth: fc.constantFrom<Auth>('valid', 'valid', 'valid', 'none', 'wrong'),
    header: fc.option(
      fc.tuple(
        fc.constantFrom(
          'accept',
          'accept-encoding',
          'x-forwarded-for',
          'cookie',
          'origin',
          'range',
          'if-none-match',
          'x-csrf-token',
          'idempotency-key',
          'authorization',
        ),
        printable,
      ),
      { freq: 3 },
    ),
  });
}

/** Every leaf of a JSON value, as key paths (objects and arrays both). */
function leafPaths(value: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  if (value === null || typeof value !== 'object') return prefix.length ? [prefix] : [];
  const entries = Array.isArray(value)
    ? value.map((v, i) => [i, v] as const)
    : Object.entries(value as Record<string, unknown>);
  const out: (string | number)[][] = prefix.length ? [prefix] : [];
  for (const [k, v] of entries) out.push(...leafPaths(v, [...prefix, k]));
  return out;
}

/** A copy of `value` with the field at `path` replaced, or dropped. */
function withField(value: unknown, path: (string | number)[], to: unknown, drop: boolean): unknown {
  const copy = structuredClone(value) as Record<string | number, unknown>;
  let at = copy;
  for (const k of path.slice(0, -1)) at = at[k] as Record<string | number, unknown>;
  const last = path[path.length - 1] as string | number;
  if (drop && Array.isArray(at)) at.splice(last as number, 1);
  else if (drop) delete at[last];
  else at[last] = to;
  return copy;
}

const encode = (v: unknown): Buffer =>
  Buffer.isBuffer(v)
    ? v
    : v instanceof Uint8Array
      ? Buffer.from(v)
      : Buffer.from(JSON.stringify(v) ?? 'null');

const flip = (b: Buffer, i: number, x: number) => void b.writeUInt8(b.readUInt8(i) ^ x, i);

function bodyOf(e: Endpoint, pick: number, spec: BodySpec): Buffer | undefined {
  const valid = e.body?.(pick);
  switch (spec.kind) {
    case 'valid':
      return valid === undefined ? undefined : encode(valid);
    case 'none':
      return undefined;
    case 'json':
      return encode(spec.value);
    case 'bytes':
      return Buffer.from(spec.value);
    case 'flip': {
      const bytes = Buffer.from(encode(valid ?? {}));
      if (bytes.length) flip(bytes, spec.at % bytes.length, spec.xor);
      return bytes;
    }
    case 'field': {
      if (valid === undefined || Buffer.isBuffer(valid) || valid instanceof Uint8Array) {
        const bytes = Buffer.from(encode(valid ?? {}));
        if (bytes.length) flip(bytes, spec.pick % bytes.length, 0x5a);
        return bytes;
      }
      const paths = leafPaths(valid);
      if (paths.length === 0) return encode({ unexpected: spec.value });
      return encode(
        withField(
          valid,
          paths[spec.pick % paths.length] as (string | number)[],
          spec.value,
          spec.drop,
        ),
      );
    }
  }
}

function pathOf(e: Endpoint, pick: number, spec: PathSpec): string {
  const valid = e.path(pick);
  switch (spec.kind) {
    case 'valid':
      return valid;
    case 'suffix':
      return `${valid}/${spec.segment}`;
    case 'random':
      return `/${spec.segments.join('/')}`;
    case 'param': {
      const parts = valid.split('/');
      const params = e.pattern
        .split('/')
        .map((p, i) => (p.startsWith(':') ? i : -1))
        .filter((i) => i >= 0);
      const i = params.length ? (params[spec.pick % params.length] as number) : parts.length - 1;
      parts[i] = spec.segment;
      return parts.join('/');
    }
  }
}

/** What one case sent, for the failure message. */
export function describeCase(
  e: Endpoint,
  method: string,
  path: string,
  body: Buffer | undefined,
): string {
  const shown = body === undefined ? '(none)' : body.subarray(0, 200).toString('utf8');
  return `${e.listener} ${e.method} ${e.pattern}: sent ${method} ${path.slice(0, 200)} body ${shown}`;
}

const ERROR_CODE = /^[A-Z][A-Z0-9_]*$/;

/** Tallies of one run, for the campaign's figures. */
export interface FuzzTally {
  cases: number;
  byStatus: Map<number, number>;
  refusedWithoutWrites: number;
}

/**
 * The property over one target: any request to any endpoint is answered below 500; every 4xx
 * carries a stable error code; a refused request changes no row of any table.
 */
export async function fuzzHttp(target: FuzzTarget, numRuns: number): Promise<FuzzTally> {
  const tables = await tableNames(target.db);
  assert.ok(tables.length > 3, 'the schema has its tables');
  const listeners = new Map(target.listeners.map((l) => [l.name, l]));
  const tally: FuzzTally = { cases: 0, byStatus: new Map(), refusedWithoutWrites: 0 };
  await fc.assert(
    fc.asyncProperty(fuzzRequest(target.endpoints.length), async (c) => {
      const e = target.endpoints[c.endpoint] as Endpoint;
      const listener = listeners.get(e.listener);
      assert.ok(listener, `no listener ${e.listener}`);
      const method = c.method ?? e.method;
      const bare = pathOf(e, c.pick, c.path);
      const path = bare + (c.query === null ? '' : `?${c.query}`);
      const body = bodyOf(e, c.pick, c.body);
      const { tls, headers } = listener.client(c.auth, body, `${method} ${bare}`);
      if (body !== undefined) headers['content-type'] = c.contentType ?? 'application/json';
      else if (c.contentType !== null) headers['content-type'] = c.contentType;
      if (c.encoding !== null) headers['content-encoding'] = c.encoding;
      if (c.header !== null) headers[c.header[0]] = c.header[1];
      const what = () => describeCase(e, method, path, body);
      const before = await tableSums(target.db, tables);
      const chunked = c.chunked && body !== undefined && body.length > 1;
      // Node frames a GET's body only when told to; unframed, its bytes would read as a second request.
      if (chunked) headers['transfer-encoding'] = 'chunked';
      const r = await httpsRequest(listener.port(), method, path, tls, body, headers, chunked);
      await target.settle();
      const after = await tableSums(target.db, tables);
      tally.cases++;
      tally.byStatus.set(r.status, (tally.byStatus.get(r.status) ?? 0) + 1);
      assert.ok(r.status >= 100 && r.status < 500, `${r.status} for ${what()}`);
      if (r.status >= 400) {
        if (method !== 'HEAD') {
          let code: unknown;
          try {
            code = r.json<{ error?: unknown }>().error;
          } catch {
            code = undefined;
          }
          assert.ok(
            typeof code === 'string' && ERROR_CODE.test(code),
            `${r.status} without a stable error code (${r.body.subarray(0, 100).toString()}) for ${what()}`,
          );
        }
        const allowed = new Set(
          target.writesOnRefusal?.(method, path.split('?')[0] as string) ?? [],
        );
        const written = changedTables(before, after).filter((t) => !allowed.has(t));
        assert.deepEqual(
          written,
          [],
          `refused with ${r.status}, yet wrote to ${written.join(', ')}: ${what()}`,
        );
        tally.refusedWithoutWrites++;
      }
      await target.afterEach?.(e, r);
    }),
    { numRuns, ...fuzzSeed() },
  );
  return tally;
}

/** After the storm: every listener still answers its health check. */
export async function assertStillAnswering(target: FuzzTarget): Promise<void> {
  for (const l of target.listeners) {
    const { tls, headers } = l.client('valid', undefined, 'GET /healthz');
    const r = await httpsRequest(l.port(), 'GET', '/healthz', tls, undefined, headers);
    assert.equal(r.status, 200, `${l.name} no longer answers`);
  }
}

/** One line of figures for the campaign log. */
export function formatTally(name: string, t: FuzzTally): string {
  const statuses = [...t.byStatus.entries()]
    .sort(([a], [b]) => a - b)
    .map(([s, n]) => `${s}×${n}`)
    .join(' ');
  return `${name}: ${t.cases} requests, ${t.refusedWithoutWrites} refused with no row written; statuses ${statuses}`;
}
