/**
 * The simulated quarantined people: each a beacon making real tokens (protocol/token) and a relay
 * that uploads them as the real relay does — tokens buffered until a request carrying them is
 * answered 202, then forgotten. The harness keeps its own ground truth here: who left, and the
 * newest token the app backend accepted (answered 202) for each person.
 */
import { Agent, request } from 'node:https';
import { openStatus, type PresenceStatus } from '../../protocol/presence-status.js';
import { MAX_TOKENS_PER_REQUEST, encodePresenceBody } from '../../protocol/presence.js';
import { TestBeacon } from '../../app-backend/test/harness.js';

export class Person {
  readonly beacon = new TestBeacon();
  /** Tokens heard and not yet answered 202, oldest first, with their beacon time (ms). */
  buffer: { token: Uint8Array; at: number }[] = [];
  /** When the person left home (their relay goes on, hearing no beacon); null while home. */
  leftAt: number | null = null;
  /** Accepted requests (202) with tokens, by the newest token's time, not yet checked. */
  unchecked: number[] = [];
  nextUploadAt = 0;
  lastStatus: PresenceStatus | null = null;
  constructor(readonly index: number) {}
}

export interface PresenceCounts {
  /** Requests with tokens answered 202. */
  accepted: number;
  /** Tokens in them. */
  tokensAccepted: number;
  /** Requests not answered 202 (backend down, cut, shed): their tokens stay in the relay. */
  failed: number;
}

/** Every relay, uploading on its own schedule to whichever app backend instance it is given. */
export class Relays {
  readonly counts: PresenceCounts = { accepted: 0, tokensAccepted: 0, failed: 0 };
  readonly #agent: Agent;
  #timer: NodeJS.Timeout | undefined;
  #inFlight = new Set<Promise<void>>();
  #paused = false;

  constructor(
    readonly people: Person[],
    ca: string,
    /** The app backend's public port each person uploads to (two instances: split them). */
    private readonly portOf: (p: Person) => number,
    private readonly uploadMs: number,
    private readonly maxInFlight = 48,
  ) {
    this.#agent = new Agent({
      keepAlive: true,
      ca,
      servername: 'localhost',
      maxSockets: maxInFlight,
    });
  }

  start(): void {
    const now = Date.now();
    // Spread over one interval, as real phones are.
    for (const p of this.people)
      p.nextUploadAt = now + Math.floor((p.index / this.people.length) * this.uploadMs);
    this.#paused = false;
    this.#timer ??= setInterval(() => this.#tick(), 20);
  }

  /** No new uploads; resolves once those in flight have their answers. */
  async pause(): Promise<void> {
    this.#paused = true;
    while (this.#inFlight.size) await Promise.all([...this.#inFlight]);
  }

  resume(): void {
    this.#paused = false;
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.pause();
    this.#agent.destroy();
  }

  #tick(): void {
    if (this.#paused) return;
    const now = Date.now();
    for (const p of this.people) {
      if (this.#inFlight.size >= this.maxInFlight) return;
      if (p.nextUploadAt > now) continue;
      const run: Promise<void> = this.uploadNow(p)
        .then(() => undefined)
        .finally(() => this.#inFlight.delete(run));
      this.#inFlight.add(run);
    }
  }

  /** The relay's upload, now: at home with the latest token it heard (the cadence matches). */
  uploadNow(p: Person): Promise<PresenceStatus | null> {
    const now = Date.now();
    p.nextUploadAt = now + this.uploadMs;
    if (p.leftAt === null) {
      p.buffer.push({ token: p.beacon.token(now), at: Math.floor(now / 1000) * 1000 });
      if (p.buffer.length > MAX_TOKENS_PER_REQUEST) p.buffer.shift();
    }
    return this.upload(p);
  }

  /** One upload of the person's buffer; on 202 the tokens are gone from the relay, as in the real one. */
  async upload(p: Person): Promise<PresenceStatus | null> {
    const sent = p.buffer.slice();
    const answer = await this.post(
      p,
      sent.map((t) => t.token),
    );
    if (answer === null) {
      this.counts.failed++;
      return null;
    }
    p.lastStatus = answer;
    p.buffer = p.buffer.slice(sent.length);
    if (sent.length) {
      this.counts.accepted++;
      this.counts.tokensAccepted += sent.length;
      p.unchecked.push(Math.max(...sent.map((t) => t.at)));
    }
    return answer;
  }

  /** POST /v1/presence; the opened status on 202, else null. */
  post(p: Person, tokens: Uint8Array[]): Promise<PresenceStatus | null> {
    const body = encodePresenceBody(p.beacon.skTPast, tokens);
    return new Promise((resolve) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: this.portOf(p),
          method: 'POST',
          path: '/v1/presence',
          agent: this.#agent,
          timeout: 10_000,
          headers: { 'content-length': String(body.length) },
        },
        (res) => {
          const parts: Buffer[] = [];
          res.on('data', (c: Buffer) => parts.push(c));
          res.on('end', () => {
            if (res.statusCode !== 202) return resolve(null);
            const status = openStatus(p.beacon.skTPast, new Uint8Array(Buffer.concat(parts)));
            resolve(status ?? { code: 'not_monitored', since: null, until: null, serverTime: 0 });
          });
          res.on('error', () => resolve(null));
        },
      );
      req.on('error', () => resolve(null));
      req.on('timeout', () => req.destroy());
      req.end(body);
    });
  }
}
