/**
 * An officer on the police backend's own API, as the dashboard uses it: signs in, registers and
 * enables beacons, and reads the alerts officers see.
 */
import { Agent, request } from 'node:https';

export interface ShownAlert {
  readonly id: string;
  readonly beaconId: string;
  readonly kind: string;
  readonly occurredAt: number;
  readonly receivedAt: number;
}

export class OfficerClient {
  readonly #agent: Agent;
  #cookie = '';
  #csrf = '';

  constructor(
    private readonly port: () => number,
    ca: string,
    private readonly username: string,
    private readonly password: string,
  ) {
    this.#agent = new Agent({ keepAlive: true, ca, servername: 'localhost', maxSockets: 8 });
  }

  async signIn(): Promise<void> {
    const r = await this.#call('POST', '/api/session', {
      username: this.username,
      password: this.password,
    });
    if (r.status !== 200) throw new Error(`sign-in failed: HTTP ${r.status}`);
    this.#cookie = String(r.cookie).split(';')[0] ?? '';
    this.#csrf = (JSON.parse(r.body) as { csrf: string }).csrf;
  }

  async registerBeacon(beaconId: string, address: string, caseRef: string): Promise<void> {
    const r = await this.call('POST', '/api/beacons', { beaconId, address, caseRef });
    if (r.status !== 201) throw new Error(`beacon registration failed: HTTP ${r.status} ${r.body}`);
  }

  async enable(beaconId: string): Promise<void> {
    const r = await this.call('POST', `/api/beacons/${encodeURIComponent(beaconId)}/enable`, {});
    if (r.status !== 202) throw new Error(`enable failed: HTTP ${r.status} ${r.body}`);
  }

  /** Beacon statuses by beacon ID. */
  async beaconStatuses(): Promise<Map<string, string>> {
    const r = await this.call('GET', '/api/beacons');
    const { beacons } = JSON.parse(r.body) as { beacons: { beaconId: string; status: string }[] };
    return new Map(beacons.map((b) => [b.beaconId, b.status]));
  }

  /**
   * Every violation alert officers can see that occurred in [from, to], from the history view
   * (open and reviewed alike). The view returns at most 500, so a full page is split in two.
   */
  async violations(from: number, to: number): Promise<ShownAlert[]> {
    const r = await this.call(
      'GET',
      `/api/alerts?view=history&kind=NO_PRESENCE&from=${from}&to=${to}`,
    );
    if (r.status !== 200) throw new Error(`alert list failed: HTTP ${r.status}`);
    const { alerts } = JSON.parse(r.body) as { alerts: ShownAlert[] };
    if (alerts.length < 500 || to - from < 2) return alerts;
    const mid = Math.floor((from + to) / 2);
    return [...(await this.violations(from, mid)), ...(await this.violations(mid + 1, to))];
  }

  /** A signed-in call; a restarted police backend with the same session keys keeps the session. */
  async call(method: string, path: string, body?: unknown) {
    let r = await this.#call(method, path, body);
    if (r.status === 401) {
      await this.signIn();
      r = await this.#call(method, path, body);
    }
    return r;
  }

  close(): void {
    this.#agent.destroy();
  }

  #call(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: string; cookie: string | undefined }> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: this.port(),
          method,
          path,
          agent: this.#agent,
          timeout: 30_000,
          headers: {
            ...(payload
              ? { 'content-type': 'application/json', 'content-length': String(payload.length) }
              : {}),
            ...(this.#cookie ? { cookie: this.#cookie, 'x-csrf-token': this.#csrf } : {}),
          },
        },
        (res) => {
          const parts: Buffer[] = [];
          res.on('data', (c: Buffer) => parts.push(c));
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              body: Buffer.concat(parts).toString('utf8'),
              cookie: res.headers['set-cookie']?.[0],
            }),
          );
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.end(payload);
    });
  }
}
