/**
 * The load generator for `bench:ingest`, run as its own process so the server's CPU is its own:
 * `node dist/bench/load.js <port> <bodies.bin> <seconds> <connections>`; prints autocannon's result as JSON.
 */
import autocannon from 'autocannon';
import { readFileSync } from 'node:fs';

const [port, file, seconds, connections] = process.argv.slice(2);
const all = readFileSync(file as string);
const size = 4130;
const bodies = Array.from({ length: all.length / size }, (_, i) =>
  all.subarray(i * size, (i + 1) * size),
);

const result = await autocannon({
  url: `https://127.0.0.1:${port}`,
  connections: Number(connections),
  duration: Number(seconds),
  pipelining: 1,
  // Each connection cycles through the same realistic mix of bodies.
  requests: bodies.map((body) => ({
    method: 'POST' as const,
    path: '/v1/presence',
    body,
    headers: { 'content-type': 'application/octet-stream' },
  })),
});
process.stdout.write(
  JSON.stringify({
    requests: result.requests.total,
    non2xx: result.non2xx,
    errors: result.errors,
    p50: result.latency.p50,
    p99: result.latency.p99,
    rps: result.requests.average,
  }),
);
