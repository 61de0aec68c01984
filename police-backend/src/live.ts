import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { SessionClaims } from './session.js';

/** Which of these sessions are still valid (not signed out, not expired), as of now. */
export type LiveSessionCheck = (sids: readonly string[]) => Promise<ReadonlySet<string>>;

/** Close code for a feed whose session ended (sign-out or expiry): the client must sign in again. */
export const SESSION_ENDED = 4401;

/**
 * Live updates for the dashboard at /api/live: the upgrade is authenticated with the session
 * cookie and must come from our own origin; dead connections are found by ping and dropped. A
 * feed lives no longer than its session: closed at sign-out, and at the next heartbeat once the
 * session has expired or was revoked elsewhere, since the feed carries addresses.
 */
export class LiveUpdates {
  readonly #wss = new WebSocketServer({ noServer: true, maxPayload: 4096 });
  readonly #alive = new WeakSet<WebSocket>();
  /** The session each open feed was opened under, once its opening is on record. */
  readonly #sessions = new Map<WebSocket, string>();
  readonly #timer: NodeJS.Timeout;

  constructor(
    server: Server,
    authenticate: (req: IncomingMessage) => Promise<SessionClaims | undefined>,
    private readonly stillValid: LiveSessionCheck,
    /** Record the opening (an access to addresses) once the upgrade succeeded; a failure closes it. */
    private readonly opened: (session: SessionClaims) => Promise<void>,
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
      ws.on('close', () => this.#sessions.delete(ws));
      ws.on('pong', () => this.#alive.add(ws));
      ws.on('message', () => undefined);
      ws.on('error', () => ws.terminate());
      // Nothing is pushed before the opening is on record.
      this.opened(session).then(
        () => {
          if (ws.readyState !== ws.OPEN) return;
          this.#sessions.set(ws, session.sid);
          ws.send(JSON.stringify({ type: 'hello', username: session.username }));
        },
        () => ws.close(1011, 'unavailable'),
      );
    });
  }

  #heartbeat(): void {
    void this.recheckSessions().catch(() => undefined);
    for (const ws of this.#wss.clients) {
      if (!this.#alive.has(ws)) {
        ws.terminate();
        continue;
      }
      this.#alive.delete(ws);
      ws.ping();
    }
  }

  /** Close every feed opened under `sid` (its officer signed out). */
  endSession(sid: string): void {
    for (const [ws, s] of this.#sessions) if (s === sid) this.#end(ws);
  }

  /** Close the feeds whose session is no longer valid; runs with every heartbeat. */
  async recheckSessions(): Promise<void> {
    const sids = [...new Set(this.#sessions.values())];
    if (!sids.length) return;
    const valid = await this.stillValid(sids);
    for (const [ws, s] of this.#sessions) if (!valid.has(s)) this.#end(ws);
  }

  #end(ws: WebSocket): void {
    this.#sessions.delete(ws);
    ws.close(SESSION_ENDED, 'session ended');
  }

  broadcast(message: object): void {
    const text = JSON.stringify(message);
    // Only feeds whose opening is on record (an access to addresses) get pushes.
    for (const ws of this.#sessions.keys()) if (ws.readyState === ws.OPEN) ws.send(text);
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
