import { request } from 'node:https';

/** The officer's session with the police backend's officer API (docs/police-api.md). */
export class PoliceClient {
  private constructor(
    private readonly base: URL,
    private readonly ca: string,
    private readonly cookie: string,
    private readonly csrf: string,
  ) {}

  static async signIn(
    url: string,
    ca: string,
    username: string,
    password: string,
  ): Promise<PoliceClient> {
    const r = await send(new URL('/api/session', url), ca, 'POST', { username, password });
    if (r.status !== 200) throw new PoliceError(r.status, errorCode(r.body));
    const cookie = String(r.setCookie ?? '').split(';')[0] ?? '';
    return new PoliceClient(
      new URL(url),
      ca,
      cookie,
      (JSON.parse(r.body) as { csrf: string }).csrf,
    );
  }

  async get(path: string): Promise<Record<string, unknown>> {
    const r = await send(new URL(path, this.base), this.ca, 'GET', undefined, {
      cookie: this.cookie,
    });
    if (r.status !== 200) throw new PoliceError(r.status, errorCode(r.body));
    return JSON.parse(r.body) as Record<string, unknown>;
  }

  async post(path: string, body: unknown): Promise<Record<string, unknown>> {
    const r = await send(new URL(path, this.base), this.ca, 'POST', body, {
      cookie: this.cookie,
      'x-csrf-token': this.csrf,
    });
    if (r.status < 200 || r.status >= 300) throw new PoliceError(r.status, errorCode(r.body));
    return JSON.parse(r.body) as Record<string, unknown>;
  }
}

export class PoliceError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
  ) {
    super(`police backend refused (${status} ${code})`);
  }
}

function errorCode(body: string): string {
  try {
    return String((JSON.parse(body) as { error?: unknown }).error ?? 'UNKNOWN');
  } catch {
    return 'UNKNOWN';
  }
}

function send(
  url: URL,
  ca: string,
  method: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string; setCookie: string[] | undefined }> {
  const payload = body === undefined ? '' : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method,
        ca,
        headers: {
          'content-type': 'application/json',
          'content-length': String(Buffer.byteLength(payload)),
          ...headers,
        },
        timeout: 15_000,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body: Buffer.concat(chunks).toString('utf8'),
            setCookie: res.headers['set-cookie'],
          }),
        );
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(payload);
  });
}
