import { Agent, type RequestOptions, request } from 'node:https';
import { TLS_DEFAULTS } from './tls.js';

/** Where a service calls its peer: base URL, the CN the peer's certificate must carry, our own certificate. */
export interface MtlsPeer {
  readonly url: string;
  readonly identity: string;
  readonly tls: { readonly cert: string; readonly key: string; readonly ca: string };
}

export interface MtlsAnswer {
  readonly status: number;
  readonly body: string;
}

const TIMEOUT_MS = 10_000;

/** TLS options for calling `peer`: our certificate, its CA, and its own identity checked. */
function tlsOptions(peer: MtlsPeer): RequestOptions {
  return {
    ...TLS_DEFAULTS,
    cert: peer.tls.cert,
    key: peer.tls.key,
    ca: peer.tls.ca,
    // Chaining to our CA is not enough: it must be that peer's own certificate.
    checkServerIdentity: (_host, cert) =>
      cert.subject?.CN === peer.identity ? undefined : new Error('unexpected server identity'),
  };
}

/** One POST; `reused` tells the caller whether it went over a connection that had served before. */
function post(
  peer: MtlsPeer,
  path: string,
  payload: string,
  headers: Record<string, string>,
  agent: Agent | false,
): Promise<MtlsAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(
      new URL(path, peer.url),
      {
        method: 'POST',
        ...tlsOptions(peer),
        headers: {
          'content-type': 'application/json',
          'content-length': String(Buffer.byteLength(payload)),
          ...headers,
        },
        timeout: TIMEOUT_MS,
        agent,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
        );
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (req.reusedSocket) Object.assign(err, { reusedSocket: true });
      reject(err);
    });
    req.end(payload);
  });
}

/** POST JSON to the peer over mutual TLS on a new connection; resolves with status and body, rejects on network errors. */
export function mtlsPost(
  peer: MtlsPeer,
  path: string,
  payload: string,
  headers: Record<string, string> = {},
): Promise<MtlsAnswer> {
  return post(peer, path, payload, headers, false);
}

/** The server closes idle connections after 5 s (Node's default): drop ours before it does. */
const IDLE_MS = 4_000;

/**
 * Keep-alive mutual-TLS connections to one peer, at most `maxSockets` of them: a busy sender pays
 * one handshake per connection instead of one per request. Call close() when done.
 */
export class MtlsClient {
  readonly #agent: Agent;

  constructor(
    readonly peer: MtlsPeer,
    options: { readonly maxSockets?: number } = {},
  ) {
    const maxSockets = options.maxSockets ?? 16;
    this.#agent = new Agent({
      keepAlive: true,
      maxSockets,
      maxFreeSockets: maxSockets,
      timeout: IDLE_MS,
      scheduling: 'lifo',
    });
  }

  /**
   * POST JSON to the peer; for idempotent requests only: one that fails on a kept-alive
   * connection the server had just closed is sent once more, on a fresh one.
   */
  async post(
    path: string,
    payload: string,
    headers: Record<string, string> = {},
  ): Promise<MtlsAnswer> {
    try {
      return await post(this.peer, path, payload, headers, this.#agent);
    } catch (err) {
      const e = err as NodeJS.ErrnoException & { reusedSocket?: boolean };
      if (!e.reusedSocket || (e.code !== 'ECONNRESET' && e.code !== 'EPIPE')) throw err;
      return post(this.peer, path, payload, headers, this.#agent);
    }
  }

  /** Close every connection (in use or idle). */
  close(): void {
    this.#agent.destroy();
  }
}

const BASE_DELAY_MS = 1000;
const MAX_DELAY_MS = 5 * 60_000;

/** Exponential backoff with full jitter: attempt n waits a random time up to min(5 min, 1 s · 2^n). */
export function backoffMs(attempts: number, random: () => number = Math.random): number {
  return Math.round(random() * Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** Math.min(attempts, 20)));
}
