/**
 * The load generator of `bench:ingest` and `bench:scale-out`, run as its own process so the
 * servers' CPU is their own: `node dist/bench/load.js '<LoadSpec as JSON>'`; prints a LoadResult
 * as JSON. autocannon drives the connections; the request bytes come from prebuilt pools instead
 * of autocannon's per-connection copies, so memory does not grow with connections × bodies:
 * every real request is a real person's next body, every dummy one a key never sent before (as
 * ten million installs with a key each look to the server).
 */
import autocannon from 'autocannon';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { PRESENCE_BODY_LENGTH, encodePresenceBody } from '../protocol/presence.js';

export interface LoadSpec {
  /** One or more servers; connections are spread over them in turn. */
  readonly urls: readonly string[];
  /** Real bodies, concatenated; may be absent when realEvery is 0. */
  readonly realBodies?: string;
  /** One request in `realEvery` is real (10: 90 % dummies); 0: all dummies. */
  readonly realEvery: number;
  readonly seconds: number;
  readonly connections: number;
  /** Requests per second over all connections (autocannon's overallRate); absent: as fast as possible. */
  readonly rate?: number;
}

export interface Latency {
  readonly n: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly mean: number;
}

export interface LoadResult {
  readonly requests: number;
  readonly non2xx: number;
  readonly errors: number;
  readonly rps: number;
  /** ms, every request */
  readonly latency: Latency;
  /** ms, split by kind: what an observer comparing dummy and real answers would see. */
  readonly dummy: Latency;
  readonly real: Latency;
  /** CPU seconds this load process used. */
  readonly cpuSeconds: number;
}

const spec = JSON.parse(process.argv[2] as string) as LoadSpec;
const head = Buffer.from(
  `POST /v1/presence HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n` +
    `content-type: application/octet-stream\r\nContent-Length: ${PRESENCE_BODY_LENGTH}\r\n\r\n`,
);
const request = (body: Buffer) => Buffer.concat([head, body]);

const realPool: Buffer[] = [];
if (spec.realEvery > 0) {
  const all = readFileSync(spec.realBodies as string);
  for (let at = 0; at < all.length; at += PRESENCE_BODY_LENGTH)
    realPool.push(request(all.subarray(at, at + PRESENCE_BODY_LENGTH)));
}
// Dummies: a ring far larger than the requests in flight, each key rewritten (a counter) before
// reuse, so no buffer still queued on a socket is ever changed and no key repeats.
const KEY_AT = head.length + 2;
const dummyPool = Array.from({ length: 4096 }, () =>
  request(encodePresenceBody(randomBytes(32), [])),
);
let dummyCount = 0;
let realCount = 0;
let sent = 0;

function next(): { buffer: Buffer; real: boolean } {
  const real = spec.realEvery > 0 && sent++ % spec.realEvery === 0;
  if (real) return { buffer: realPool[realCount++ % realPool.length] as Buffer, real };
  const buffer = dummyPool[dummyCount % dummyPool.length] as Buffer;
  buffer.writeUInt32BE(dummyCount++ >>> 0, KEY_AT + 28);
  buffer.writeUInt32BE(Math.floor(dummyCount / 2 ** 32), KEY_AT + 24);
  return { buffer, real: false };
}

const latencies = { dummy: [] as number[], real: [] as number[] };
interface Tagged {
  getRequestBuffer(): Buffer;
  kind?: 'dummy' | 'real';
}

const cpu = process.cpuUsage();
const result = await new Promise<autocannon.Result>((resolve, reject) => {
  const instance = autocannon(
    {
      // autocannon takes several URLs and spreads connections over them; its types say one string.
      url: spec.urls.map((u) => `${u}/v1/presence`) as unknown as string,
      connections: spec.connections,
      duration: spec.seconds,
      pipelining: 1,
      ...(spec.rate ? { overallRate: spec.rate } : {}),
      method: 'POST',
      body: head,
      // One outstanding request per connection: the kind of the last buffer handed out is the kind answered.
      setupClient: (client) => {
        const c = client as unknown as Tagged;
        c.getRequestBuffer = () => {
          const n = next();
          c.kind = n.real ? 'real' : 'dummy';
          return n.buffer;
        };
      },
    },
    (err, done) => (err ? reject(err) : resolve(done)),
  );
  instance.on('response', (client, _status, _bytes, ms) => {
    latencies[(client as unknown as Tagged).kind ?? 'dummy'].push(ms);
  });
});
const used = process.cpuUsage(cpu);

function summarise(values: number[]): Latency {
  const s = Float64Array.from(values).sort();
  const at = (q: number) =>
    Number((s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? 0).toFixed(2));
  const mean = s.length ? s.reduce((a, b) => a + b, 0) / s.length : 0;
  return { n: s.length, p50: at(0.5), p90: at(0.9), p99: at(0.99), mean: Number(mean.toFixed(3)) };
}

const output: LoadResult = {
  requests: result.requests.total,
  non2xx: result.non2xx,
  errors: result.errors,
  rps: result.requests.total / spec.seconds,
  latency: summarise([...latencies.dummy, ...latencies.real]),
  dummy: summarise(latencies.dummy),
  real: summarise(latencies.real),
  cpuSeconds: (used.user + used.system) / 1e6,
};
process.stdout.write(JSON.stringify(output));
