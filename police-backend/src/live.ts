import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { SessionClaims } from './session.js';

/**
 * Live updates for the dashboard at /api/live: the upgrade is authenticated with the session
 * cookie and must come from our own origin; dead connections are found by ping and dropped.
 */
export class LiveUpdates {
  readonly #wss = new WebSocketServer({ noServer: true, maxPayload: 4096 });
  readonly #alive = new WeakSet<WebSocket>();
  readonly #timer: NodeJS.Timeout;

  constructor(
    server: Server,
    authenticate: (req: IncomingMessage) => Promise<SessionClaims | undefined>,
  ) {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      void this.#upgrade(req, socket, head, authenticate);
    });
    this.#timer = setInterval(() => this.#heartbeat(), 15_000);
    this.#timer.unref();
  }

  async #upgrade(
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    authenticate: (req: IncomingMessage) => Promise<SessionClaims | undefined>,
  ): Promise<void> {
    const refuse = (status: string) => {
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    };
    socket.on('error', () => undefined);
    if (new URL(req.url ?? '/', 'https://x').pathname !== '/api/live')
      return refuse('404 Not Found');
    const origin = req.headers.origin;
    if (origin !== undefined && origin !== `https://${req.headers.host}`)
      return refuse('403 Forbidden');
    const session = await authenticate(req).catch(() => undefined);
    if (!session) return refuse('401 Unauthorized');
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      this.#alive.add(ws);
      ws.on('pong', () => this.#alive.add(ws));
      ws.on('message', () => undefined);
      ws.on('error', () => ws.terminate());
      ws.send(JSON.stringify({ type: 'hello', username: session.username }));
    });
  }

  #heartbeat(): void {
    for (const ws of this.#wss.clients) {
      if (!this.#alive.has(ws)) {
        ws.terminate();
        continue;
      }
      this.#alive.delete(ws);
      ws.ping();
    }
  }

  broadcast(message: object): void {
    const text = JSON.stringify(message);
    for (const ws of this.#wss.clients) if (ws.readyState === ws.OPEN) ws.send(text);
  }

  get clients(): number {
    return this.#wss.clients.size;
  }

  close(): void {
    clearInterval(this.#timer);
    for (const ws of this.#wss.clients) ws.terminate();
    this.#wss.close();
  }
}
