import { request } from 'node:https';
import { TLS_DEFAULTS } from './tls.js';

/** Where a service calls its peer: base URL, the CN the peer's certificate must carry, our own certificate. */
export interface MtlsPeer {
  readonly url: string;
  readonly identity: string;
  readonly tls: { readonly cert: string; readonly key: string; readonly ca: string };
}

/** POST JSON to the peer over mutual TLS; resolves with status and body, rejects on network errors. */
export function mtlsPost(
  peer: MtlsPeer,
  path: string,
  payload: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      new URL(path, peer.url),
      {
        method: 'POST',
        ...TLS_DEFAULTS,
        cert: peer.tls.cert,
        key: peer.tls.key,
        ca: peer.tls.ca,
        // Chaining to our CA is not enough: it must be that peer's own certificate.
        checkServerIdentity: (_host, cert) =>
          cert.subject?.CN === peer.identity ? undefined : new Error('unexpected server identity'),
        headers: {
          'content-type': 'application/json',
          'content-length': String(Buffer.byteLength(payload)),
          ...headers,
        },
        timeout: 10_000,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
        );
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(payload);
  });
}

const BASE_DELAY_MS = 1000;
const MAX_DELAY_MS = 5 * 60_000;

/** Exponential backoff with full jitter: attempt n waits a random time up to min(5 min, 1 s · 2^n). */
export function backoffMs(attempts: number, random: () => number = Math.random): number {
  return Math.round(random() * Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** Math.min(attempts, 20)));
}
