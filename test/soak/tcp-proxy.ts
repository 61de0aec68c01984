/**
 * A TCP proxy in front of the database: the harness can cut it (every connection dropped, new ones
 * refused for a stretch, as a restarting server does) and tap what clients send, to aim a crash
 * at one statement (PostgreSQL's wire protocol carries the SQL text in the clear on loopback).
 */
import { type Server, type Socket, connect, createServer } from 'node:net';

/** Asked for each chunk a client sends; 'hold' keeps it from the server (the crash comes first). */
export type Tap = (chunk: Buffer) => 'pass' | 'hold';

export class TcpProxy {
  readonly #server: Server;
  readonly #pairs = new Set<[Socket, Socket]>();
  #refuseUntil = 0;
  #tap: Tap | undefined;
  port = 0;
  cuts = 0;

  constructor(
    private readonly upstreamHost: string,
    private readonly upstreamPort: number,
  ) {
    this.#server = createServer((client) => this.#accept(client));
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', () => resolve()));
    this.port = (this.#server.address() as { port: number }).port;
    return this.port;
  }

  /** Watch what clients send (until cleared with undefined). */
  tap(fn: Tap | undefined): void {
    this.#tap = fn;
  }

  /** Drop every connection now and refuse new ones for `ms`. */
  cut(ms: number): void {
    this.cuts++;
    this.#refuseUntil = Date.now() + ms;
    for (const [a, b] of this.#pairs) {
      a.destroy();
      b.destroy();
    }
    this.#pairs.clear();
  }

  get refusing(): boolean {
    return Date.now() < this.#refuseUntil;
  }

  close(): Promise<void> {
    for (const [a, b] of this.#pairs) {
      a.destroy();
      b.destroy();
    }
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  #accept(client: Socket): void {
    if (this.refusing) return void client.destroy();
    const server = connect(this.upstreamPort, this.upstreamHost);
    const pair: [Socket, Socket] = [client, server];
    this.#pairs.add(pair);
    const end = () => {
      this.#pairs.delete(pair);
      client.destroy();
      server.destroy();
    };
    client.on('error', end).on('close', end);
    server.on('error', end).on('close', end);
    server.on('data', (chunk: Buffer) => client.write(chunk));
    client.on('data', (chunk: Buffer) => {
      if (this.#tap?.(chunk) === 'hold') {
        // Nothing more from this client reaches the server: it is about to be killed.
        client.pause();
        return;
      }
      server.write(chunk);
    });
  }
}
