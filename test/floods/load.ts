/**
 * Request loops for the campaign: a flood (as fast as its connections allow) and legitimate
 * traffic (at a steady pace), each counting answers and timing them.
 */
import { Agent, request } from 'node:https';
import type { TlsIdentity } from './slow-clients.js';

export interface Shot {
  readonly path: string;
  readonly body: Buffer | string;
  readonly headers?: Record<string, string>;
}

export class Tally {
  readonly statuses = new Map<string, number>();
  readonly latencies: number[] = [];
  count = 0;

  add(status: string, ms: number): void {
    this.count++;
    this.statuses.set(status, (this.statuses.get(status) ?? 0) + 1);
    this.latencies.push(ms);
  }

  /** Share of answers with one of `ok` statuses. */
  rate(...ok: string[]): number {
    return this.count ? ok.reduce((n, s) => n + (this.statuses.get(s) ?? 0), 0) / this.count : 0;
  }

  percentile(p: number): number {
    const sorted = [...this.latencies].sort((a, b) => a - b);
    return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
  }

  describe(): string {
    return [...this.statuses].map(([s, n]) => `${s}: ${n.toLocaleString('en-US')}`).join(', ');
  }
}

/** One HTTPS request; resolves with its status (or the network error's code). */
export function shoot(
  port: number,
  tls: TlsIdentity,
  shot: Shot,
  agent: Agent | false,
): Promise<string> {
  return new Promise((resolve) => {
    const body = Buffer.from(shot.body);
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: shot.path,
        servername: 'localhost',
        ca: tls.ca,
        ...(tls.cert ? { cert: tls.cert, key: tls.key } : {}),
        agent,
        timeout: 30_000,
        headers: { 'content-length': String(body.length), ...shot.headers },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(String(res.statusCode)));
        res.on('error', () => resolve('RESET'));
      },
    );
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
    req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'NETWORK'));
    req.end(body);
  });
}

/** `connections` loops sending `next()` back to back over kept-alive connections until `until`. */
export async function flood(
  port: number,
  tls: TlsIdentity,
  connections: number,
  until: number,
  next: (i: number) => Shot,
): Promise<Tally> {
  const tally = new Tally();
  const agent = new Agent({ keepAlive: true, maxSockets: connections, ...tls });
  let i = 0;
  const loop = async () => {
    while (Date.now() < until) {
      const t = performance.now();
      tally.add(await shoot(port, tls, next(i++), agent), performance.now() - t);
    }
  };
  await Promise.all(Array.from({ length: connections }, loop));
  agent.destroy();
  return tally;
}

/** One request every `everyMs` until `until`, each on a new connection (as a phone would). */
export async function steady(
  everyMs: number,
  until: number,
  send: (i: number) => Promise<string>,
): Promise<Tally> {
  const tally = new Tally();
  const pending: Promise<void>[] = [];
  for (let i = 0; Date.now() < until; i++) {
    const t = performance.now();
    pending.push(send(i).then((status) => tally.add(status, performance.now() - t)));
    await new Promise((r) => setTimeout(r, everyMs));
  }
  await Promise.all(pending);
  return tally;
}
