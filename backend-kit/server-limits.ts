import { type RequestListener, STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { type Server, type ServerOptions, createServer } from 'node:https';

/**
 * How long a connection may take at each step, and how many may be open: what keeps slow or idle
 * clients (slowloris, half-open handshakes) from holding sockets and memory. One set per service,
 * applied to each of its listeners.
 */
export interface ServerLimits {
  /** TLS handshake, from accept to finished. */
  readonly handshakeTimeoutMs: number;
  /** Request line and headers, from the first byte. */
  readonly headersTimeoutMs: number;
  /** The whole request, headers and body. */
  readonly requestTimeoutMs: number;
  /** An idle kept-alive connection between requests. */
  readonly keepAliveTimeoutMs: number;
  /** How often the headers and request timeouts are checked (they fire up to this much late). */
  readonly checkIntervalMs: number;
  /** Open connections on one public listener (phones, officers); beyond it new ones are closed at once. */
  readonly maxConnections: number;
  /** The same on an internal (mutual-TLS) listener, whose only client is the other backend. */
  readonly maxInternalConnections: number;
}

export const SERVER_LIMITS: ServerLimits = {
  // Real clients finish a handshake in well under a second, also on mobile; Node's 120 s default lets idle sockets pile up.
  handshakeTimeoutMs: 10_000,
  // Our clients send their headers in one write; counted from the connection's start, it also cuts one idle after its handshake.
  headersTimeoutMs: 10_000,
  // The largest body (a 1 MB alert batch on loopback, a 4 KB presence request from a phone) arrives in far less.
  requestTimeoutMs: 30_000,
  // Our clients drop idle connections at 4 s (mtls-client.ts): the server must wait longer than that.
  keepAliveTimeoutMs: 5_000,
  // Node's default of 30 s would let a byte-a-second sender live 40 s past a 10 s headers timeout.
  checkIntervalMs: 1_000,
  // Well below the process's file-descriptor limit with every listener full; one replica serves far fewer at once.
  maxConnections: 4_096,
  // An app backend replica opens 32 (delivery.ts); the cap also bounds the bodies a valid client can have us hold (each ≤ 1 MB).
  maxInternalConnections: 256,
};

/** Options for `https.createServer`: the timeouts (the connection cap is set on the server). */
export function limitOptions(limits: ServerLimits): ServerOptions {
  return {
    handshakeTimeout: limits.handshakeTimeoutMs,
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    connectionsCheckingInterval: limits.checkIntervalMs,
  };
}

/** An HTTPS listener with `limits` applied: every listener of both backends is made here. */
export function limitedHttpsServer(
  kind: 'public' | 'internal',
  tls: ServerOptions,
  limits: ServerLimits,
  handler: RequestListener,
): Server {
  const server = createServer({ ...tls, ...limitOptions(limits) }, handler);
  server.maxConnections = kind === 'public' ? limits.maxConnections : limits.maxInternalConnections;
  server.on('clientError', answerClientError);
  return server;
}

/** What Node's own parser refuses, answered with a code like every other refusal. */
const CLIENT_ERRORS: Readonly<Record<string, readonly [number, string]>> = {
  HPE_HEADER_OVERFLOW: [431, 'HEADERS_TOO_LARGE'],
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'REQUEST_TIMEOUT'],
};

/** Node's default answers these with a bare status line; ours says which refusal it was. */
export function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  // As Node's own handler: answer only on a connection that has not been answered on, then cut
  // it at once (a slow client must not keep it open by never reading the answer).
  if (socket.writable && (socket as Socket).bytesWritten === 0 && err.code !== 'ECONNRESET') {
    const [status, code] = CLIENT_ERRORS[err.code ?? ''] ?? [400, 'BAD_REQUEST'];
    const body = JSON.stringify({ error: code });
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${body.length}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}

/**
 * The limits from environment variables `<PREFIX>_HANDSHAKE_TIMEOUT_MS`, `_HEADERS_TIMEOUT_MS`,
 * `_REQUEST_TIMEOUT_MS`, `_KEEP_ALIVE_TIMEOUT_MS`, `_TIMEOUT_CHECK_INTERVAL_MS`,
 * `_MAX_CONNECTIONS`, `_MAX_INTERNAL_CONNECTIONS`; each problem is pushed to `problems`.
 */
export function readServerLimits(
  env: Record<string, string | undefined>,
  prefix: string,
  problems: string[],
): ServerLimits {
  const int = (suffix: string, fallback: number, min: number, max: number): number => {
    const name = `${prefix}_${suffix}`;
    const raw = env[name];
    if (raw === undefined || raw === '') return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) {
      problems.push(`${name} must be an integer in [${min}, ${max}]`);
      return fallback;
    }
    return n;
  };
  const d = SERVER_LIMITS;
  const limits: ServerLimits = {
    handshakeTimeoutMs: int('HANDSHAKE_TIMEOUT_MS', d.handshakeTimeoutMs, 100, 600_000),
    headersTimeoutMs: int('HEADERS_TIMEOUT_MS', d.headersTimeoutMs, 100, 600_000),
    requestTimeoutMs: int('REQUEST_TIMEOUT_MS', d.requestTimeoutMs, 100, 3_600_000),
    keepAliveTimeoutMs: int('KEEP_ALIVE_TIMEOUT_MS', d.keepAliveTimeoutMs, 100, 600_000),
    checkIntervalMs: int('TIMEOUT_CHECK_INTERVAL_MS', d.checkIntervalMs, 50, 60_000),
    maxConnections: int('MAX_CONNECTIONS', d.maxConnections, 1, 1_000_000),
    maxInternalConnections: int('MAX_INTERNAL_CONNECTIONS', d.maxInternalConnections, 1, 1_000_000),
  };
  // Node refuses a headers timeout above the request timeout; say so instead of crashing later.
  if (limits.headersTimeoutMs > limits.requestTimeoutMs)
    problems.push(`${prefix}_HEADERS_TIMEOUT_MS must not exceed ${prefix}_REQUEST_TIMEOUT_MS`);
  return limits;
}
