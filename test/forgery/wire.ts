import { type IncomingHttpHeaders } from 'node:http';
import { Agent, request } from 'node:https';
import { type AddressInfo, type Server, type Socket, connect, createServer } from 'node:net';

/**
 * A TCP relay on loopback between the client and the app backend that sees what an eavesdropper
 * on the network would: the TLS bytes each way and when they pass. It never decrypts anything.
 */
export class WireTap {
  /** Bytes client → server and server → client so far, TLS records included. */
  up = 0;
  down = 0;
  /** hrtime (ns) of the last byte upstream and of the first downstream since `mark()`. */
  lastUpAt = 0n;
  firstDownAt = 0n;
  /** Connections relayed so far: one for a campaign on a single keep-alive connection. */
  connections = 0;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();

  private constructor(targetPort: number) {
    this.#server = createServer((client) => {
      this.connections++;
      const upstream = connect(targetPort, '127.0.0.1');
      client.setNoDelay(true);
      upstream.setNoDelay(true);
      for (const s of [client, upstream]) {
        this.#sockets.add(s);
        s.on('close', () => this.#sockets.delete(s));
        s.on('error', () => (client.destroy(), upstream.destroy()));
      }
      client.on('data', (chunk: Buffer) => {
        this.lastUpAt = process.hrtime.bigint();
        this.up += chunk.length;
        upstream.write(chunk);
      });
      upstream.on('data', (chunk: Buffer) => {
        if (this.firstDownAt === 0n) this.firstDownAt = process.hrtime.bigint();
        this.down += chunk.length;
        client.write(chunk);
      });
      client.on('end', () => upstream.end());
      upstream.on('end', () => client.end());
    });
  }

  static async open(targetPort: number): Promise<WireTap> {
    const tap = new WireTap(targetPort);
    await new Promise<void>((resolve) => tap.#server.listen(0, '127.0.0.1', () => resolve()));
    return tap;
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  /** Start a new exchange: forget when the last one's bytes passed. */
  mark(): void {
    this.lastUpAt = 0n;
    this.firstDownAt = 0n;
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

/** One presence exchange as a client and as the wire saw it. */
export interface Exchange {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  /** TLS bytes of the request and of the answer on the wire. */
  readonly requestBytes: number;
  readonly answerBytes: number;
  /** Last request byte to first answer byte on the wire, µs: the server's time as an observer sees it. */
  readonly wireMicros: number;
  /** Request sent to answer read, at the client, µs. */
  readonly roundTripMicros: number;
}

/**
 * A relay's connection to the app backend: one keep-alive HTTPS connection through the tap, one
 * request at a time, so each exchange's bytes and times are its own.
 */
export class PresenceClient {
  readonly #agent: Agent;

  constructor(
    private readonly tap: WireTap,
    private readonly ca: string,
  ) {
    this.#agent = new Agent({ keepAlive: true, maxSockets: 1, ca, servername: 'localhost' });
  }

  send(body: Buffer): Promise<Exchange> {
    const tap = this.tap;
    tap.mark();
    const up = tap.up;
    const down = tap.down;
    const sentAt = process.hrtime.bigint();
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: tap.port,
          method: 'POST',
          path: '/v1/presence',
          agent: this.#agent,
          ca: this.ca,
          servername: 'localhost',
          headers: {
            'content-type': 'application/octet-stream',
            'content-length': String(body.length),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const doneAt = process.hrtime.bigint();
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              body: Buffer.concat(chunks),
              requestBytes: tap.up - up,
              answerBytes: tap.down - down,
              wireMicros: Number(tap.firstDownAt - tap.lastUpAt) / 1000,
              roundTripMicros: Number(doneAt - sentAt) / 1000,
            });
          });
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  close(): void {
    this.#agent.destroy();
  }
}

/** The answer's headers without `date` (the clock's, same width for all), as one comparable string. */
export function headerShape(headers: IncomingHttpHeaders): string {
  return JSON.stringify(
    Object.entries(headers)
      .filter(([name]) => name !== 'date')
      .sort(([a], [b]) => (a < b ? -1 : 1)),
  );
}
