/**
 * The app backend's link to the police backend, relayed by the harness over real mutual TLS on
 * both sides (the deployment PKI's own certificates), so a crash can be aimed at the worst moment
 * of a delivery: the police backend has stored the alerts and answered, the app backend has not
 * heard it yet and so has not recorded the delivery.
 */
import { type IncomingMessage, type ServerResponse } from 'node:http';
import { Agent, type Server, createServer, request } from 'node:https';
import type { DeploymentPki } from '../../deploy/pki/pki.js';

export class PoliceLink {
  readonly #server: Server;
  readonly #agent: Agent;
  /** Called instead of passing an answer on; the answer is then dropped with its connection. */
  #onAnswer: (() => Promise<void>) | undefined;
  port = 0;
  /** Answers the police gave that the app backend never heard (its crash came first). */
  answersDropped = 0;

  constructor(
    pki: DeploymentPki,
    private readonly policePort: () => number,
  ) {
    this.#agent = new Agent({
      keepAlive: true,
      ca: pki.ca.cert,
      cert: pki.appBackend.cert,
      key: pki.appBackend.key,
      servername: 'localhost',
    });
    this.#server = createServer(
      {
        cert: pki.policeBackend.cert,
        key: pki.policeBackend.key,
        ca: pki.ca.cert,
        requestCert: true,
        rejectUnauthorized: true,
      },
      (req, res) => this.#relay(req, res),
    );
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', () => resolve()));
    this.port = (this.#server.address() as { port: number }).port;
    return this.port;
  }

  /** The next successful answer is held and `fn` runs instead (once). */
  onNextAnswer(fn: (() => Promise<void>) | undefined): void {
    this.#onAnswer = fn;
  }

  close(): Promise<void> {
    this.#agent.destroy();
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }

  #relay(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const up = request(
        {
          host: '127.0.0.1',
          port: this.policePort(),
          method: req.method,
          path: req.url,
          agent: this.#agent,
          headers: { ...req.headers, host: 'localhost' },
        },
        (answer) => {
          const parts: Buffer[] = [];
          answer.on('data', (c: Buffer) => parts.push(c));
          answer.on('end', () => {
            const hook = this.#onAnswer;
            const status = answer.statusCode ?? 502;
            if (hook && status >= 200 && status < 300) {
              this.#onAnswer = undefined;
              this.answersDropped++;
              void hook().finally(() => req.socket.destroy());
              return;
            }
            res.writeHead(status, answer.headers).end(Buffer.concat(parts));
          });
        },
      );
      // The police backend is down: the app backend sees its connection fail, as it would.
      up.on('error', () => req.socket.destroy());
      up.end(body);
    });
  }
}
