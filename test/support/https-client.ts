import { request } from 'node:https';

export interface TlsClient {
  readonly ca: string;
  readonly cert?: string;
  readonly key?: string;
}

export interface HttpResult {
  readonly status: number;
  readonly body: Buffer;
  readonly headers: Record<string, string | string[] | undefined>;
  json<T = Record<string, unknown>>(): T;
}

/** One real HTTPS request on loopback, with our CA trusted and optionally a client certificate. */
export function httpsRequest(
  port: number,
  method: string,
  path: string,
  tls: TlsClient,
  body?: Buffer | string,
  headers: Record<string, string> = {},
  /** Send the body without a length, in two chunks (transfer-encoding: chunked). */
  chunked = false,
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : Buffer.from(body);
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        ca: tls.ca,
        ...(tls.cert ? { cert: tls.cert, key: tls.key } : {}),
        servername: 'localhost',
        agent: false,
        headers: {
          ...(payload && !chunked ? { 'content-length': String(payload.length) } : {}),
          ...headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const b = Buffer.concat(chunks);
          resolve({
            status: res.statusCode ?? 0,
            body: b,
            headers: res.headers,
            json: <T>() => JSON.parse(b.toString('utf8')) as T,
          });
        });
      },
    );
    req.on('error', reject);
    if (payload && chunked) req.write(payload.subarray(0, 1));
    req.end(payload && chunked ? payload.subarray(1) : payload);
  });
}
