import { type IncomingMessage, type ServerResponse } from 'node:http';
import { type Server, createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { TLS_DEFAULTS, peerIdentity } from '../../backend-kit/tls.js';
import { testPki } from '../../test/support/pki.js';

export interface StubRequest {
  readonly method: string;
  readonly path: string;
  readonly body: unknown;
  readonly peer: string | undefined;
}

export type StubReply = { status: number; body: unknown } | 'drop';

/**
 * Stands in for the app backend's internal listener: real mutual TLS with the app backend's
 * certificate, requests recorded, answers chosen by the test (default: what docs/api.md says).
 */
export class StubApp {
  readonly requests: StubRequest[] = [];
  /** Per-request answer; return undefined for the default. */
  reply: (r: StubRequest) => StubReply | undefined = () => undefined;
  readonly #server: Server;
  #port = 0;

  private constructor(server: Server) {
    this.#server = server;
  }

  static async start(): Promise<StubApp> {
    const pki = await testPki();
    // The handler needs the stub and the stub needs the server: the handler looks it up late.
    const holder: { stub?: StubApp } = {};
    const server = createServer(
      {
        cert: pki.appBackend.cert,
        key: pki.appBackend.key,
        ca: pki.ca.cert,
        requestCert: true,
        rejectUnauthorized: true,
        ...TLS_DEFAULTS,
      },
      (req, res) => void holder.stub?.handle(req, res),
    );
    const stub = new StubApp(server);
    holder.stub = stub;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    stub.#port = (server.address() as AddressInfo).port;
    return stub;
  }

  get url(): string {
    return `https://localhost:${this.#port}`;
  }

  /** Requests to paths matching `re`. */
  to(re: RegExp): StubRequest[] {
    return this.requests.filter((r) => re.test(r.path));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // kept as text
    }
    const r: StubRequest = {
      method: req.method ?? '',
      path: req.url ?? '',
      body,
      peer: peerIdentity(req.socket as TLSSocket),
    };
    this.requests.push(r);
    const answer = this.reply(r) ?? defaultReply(r);
    if (answer === 'drop') return void req.socket.destroy();
    res.writeHead(answer.status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(answer.body));
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }
}

function defaultReply(r: StubRequest): StubReply {
  if (r.peer !== 'police-backend') return { status: 403, body: { error: 'PEER_NOT_ALLOWED' } };
  const cancel = /^\/internal\/v1\/beacons\/[^/]+\/absences\/([^/]+)\/cancel$/.exec(r.path);
  if (cancel) return { status: 200, body: { absenceId: cancel[1], status: 'cancelled' } };
  if (/^\/internal\/v1\/beacons\/[^/]+\/absences$/.test(r.path)) {
    const id = (r.body as { absenceId?: unknown } | null)?.absenceId;
    return { status: 200, body: { absenceId: id, status: 'scheduled' } };
  }
  if (r.path.endsWith('/enable')) return { status: 200, body: { state: 'monitoring' } };
  if (r.path.endsWith('/end')) return { status: 200, body: { state: 'ended' } };
  return { status: 404, body: { error: 'NOT_FOUND' } };
}
