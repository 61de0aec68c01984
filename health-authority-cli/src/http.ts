/**
 * One HTTPS request to the app backend, trusting only the deployment CA given with --ca. Network
 * and TLS failures become exit 4 with a message that says which; the answer is returned as is.
 */
import { request } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { CliError, EXIT } from './errors.js';

export interface Server {
  readonly url: URL;
  /** PEM of the CA certificate(s) to trust; the system's CAs are not used. */
  readonly ca: string;
  readonly timeoutMs: number;
}

export interface ServerCertificate {
  readonly subject: string;
  readonly issuer: string;
  readonly validFrom: string;
  readonly validTo: string;
  readonly fingerprint256: string;
  readonly subjectAltName: string;
}

export interface Answer {
  readonly status: number;
  readonly body: Buffer;
  /** The body parsed as a JSON object, when it is one. */
  readonly json: Record<string, unknown> | undefined;
  readonly certificate: ServerCertificate | undefined;
}

const MAX_ANSWER = 64 * 1024;

/** `path` relative to the server URL (which may carry a path prefix, e.g. behind a proxy). */
export function endpoint(server: URL, path: string): URL {
  const url = new URL(server.href);
  url.pathname = `${server.pathname.replace(/\/+$/, '')}${path}`;
  return url;
}

/**
 * `ifLost`: for a request that changes something, what to do when the connection fails after it
 * may have arrived (added to the exit-4 message).
 */
export function send(
  server: Server,
  method: 'GET' | 'POST',
  path: string,
  body?: Buffer,
  headers: Record<string, string> = {},
  ifLost?: string,
): Promise<Answer> {
  const url = endpoint(server.url, path);
  return new Promise<Answer>((resolve, reject) => {
    const req = request(
      url,
      {
        method,
        ca: server.ca,
        agent: false,
        timeout: server.timeoutMs,
        headers: {
          accept: 'application/json',
          ...(body ? { 'content-type': 'application/json', 'content-length': body.length } : {}),
          ...headers,
        },
      },
      (res) => {
        const certificate = describePeer(res.socket as TLSSocket);
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size <= MAX_ANSWER) chunks.push(chunk);
        });
        res.on('end', () => {
          const data = Buffer.concat(chunks);
          resolve({ status: res.statusCode ?? 0, body: data, json: jsonObject(data), certificate });
        });
        res.on('error', (error) => reject(networkError(error, url, ifLost)));
      },
    );
    req.on('timeout', () =>
      req.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })),
    );
    req.on('error', (error) => reject(networkError(error, url, ifLost)));
    req.end(body);
  });
}

function jsonObject(data: Buffer): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(data.toString('utf8'));
    return value && typeof value === 'object' && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

function describePeer(socket: TLSSocket): ServerCertificate | undefined {
  const cert = typeof socket.getPeerCertificate === 'function' ? socket.getPeerCertificate() : null;
  if (!cert || !cert.subject) return undefined;
  const name = (n: Record<string, string | string[] | undefined>) =>
    Object.entries(n)
      .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join('+') : v}`)
      .join(', ');
  return {
    subject: name(cert.subject as unknown as Record<string, string>),
    issuer: name(cert.issuer as unknown as Record<string, string>),
    validFrom: new Date(cert.valid_from).toISOString(),
    validTo: new Date(cert.valid_to).toISOString(),
    fingerprint256: cert.fingerprint256,
    subjectAltName: cert.subjectaltname ?? '',
  };
}

const UNTRUSTED = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
]);

/** Exit 4, with the cause in words an operator can act on. */
export function networkError(error: Error, url: URL, ifLost?: string): CliError {
  const code = (error as NodeJS.ErrnoException).code ?? 'NETWORK_ERROR';
  const where = url.host;
  // The request may have reached the server before the connection failed.
  const maybe = ifLost ? `; the request may or may not have been applied: ${ifLost}` : '';
  let message: string;
  if (UNTRUSTED.has(code))
    message = `the certificate of ${where} is not trusted by --ca (${code}): is --ca this deployment's CA, and is this the right server?`;
  else if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID')
    message = `the certificate of ${where} is ${code === 'CERT_HAS_EXPIRED' ? 'expired' : 'not yet valid'} (${code}): renew it ("npm run pki -- renew") or check this computer's clock`;
  else if (code === 'ERR_TLS_CERT_ALTNAME_INVALID')
    message = `the certificate of ${where} is not for the host name "${url.hostname}" (${code}): use a name the certificate lists`;
  else if (code === 'ECONNREFUSED')
    message = `${where} refused the connection (${code}): is the app backend running on that port?`;
  else if (code === 'ENOTFOUND' || code === 'EAI_AGAIN')
    message = `cannot resolve "${url.hostname}" (${code})`;
  else if (code === 'ETIMEDOUT') message = `no answer from ${where} in time (${code})${maybe}`;
  else if (code === 'ECONNRESET' || code === 'EPIPE')
    message = `${where} closed the connection (${code})${maybe}`;
  else if (code.startsWith('ERR_SSL') || code === 'EPROTO')
    message = `TLS with ${where} failed (${code}): is this an HTTPS server of the deployment?`;
  else message = `cannot reach ${where} (${code})`;
  return new CliError(EXIT.unavailable, message, code);
}
