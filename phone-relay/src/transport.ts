/**
 * The one request the relay makes: POST /v1/presence over HTTPS, trusting only the configured CA
 * and, optionally, only certificates whose key (or whole certificate) matches a pin.
 */
import { X509Certificate, createHash } from 'node:crypto';
import { request } from 'node:https';
import { isIP } from 'node:net';
import { type PeerCertificate, checkServerIdentity } from 'node:tls';
import { RelayError } from './errors.js';

export interface PresenceAnswer {
  readonly status: number;
  readonly body: Buffer;
}

/** Carries one presence body to the app backend; rejects with a RelayError when it cannot. */
export interface PresenceTransport {
  send(body: Buffer): Promise<PresenceAnswer>;
}

export interface HttpsTransportOptions {
  /** The app backend's public listener, e.g. https://app.example.org:8443 */
  readonly server: string | URL;
  /** PEM of the deployment CA the server certificate must chain to. */
  readonly ca: string | Buffer;
  /** SHA-256 pins (parsePin); when given, the server must match one of them. */
  readonly pins?: readonly Buffer[];
  readonly timeoutMs?: number;
}

export const PRESENCE_PATH = '/v1/presence';
export const DEFAULT_TIMEOUT_MS = 30_000;

/**
 * Parse a pin: `sha256/<base64>` (as HPKP and curl's --pinnedpubkey write it, also `sha256//`),
 * or 64 hex digits. It may be the hash of the certificate's SubjectPublicKeyInfo (survives
 * certificate renewal with the same key) or of the whole DER certificate.
 */
export function parsePin(text: string): Buffer {
  const t = text.trim();
  let digest: Buffer | undefined;
  const b64 = /^sha256\/\/?([A-Za-z0-9+/]{43}=)$/.exec(t);
  if (b64?.[1]) digest = Buffer.from(b64[1], 'base64');
  else if (/^(?:sha256:)?[0-9a-fA-F]{64}$/.test(t))
    digest = Buffer.from(t.replace(/^sha256:/, ''), 'hex');
  if (!digest || digest.length !== 32)
    throw new RangeError(
      `pin must be sha256/<44 base64 characters> or 64 hex digits, got "${t.slice(0, 60)}"`,
    );
  return digest;
}

/** The pins of a certificate (PEM or DER), as `sha256/<base64>`. */
export function certificatePins(cert: string | Buffer): { spki: string; certificate: string } {
  const x509 = new X509Certificate(cert);
  const spki = x509.publicKey.export({ type: 'spki', format: 'der' });
  return {
    spki: `sha256/${createHash('sha256').update(spki).digest('base64')}`,
    certificate: `sha256/${createHash('sha256').update(x509.raw).digest('base64')}`,
  };
}

function pinMismatch(cert: PeerCertificate, pins: readonly Buffer[]): Error | undefined {
  const certDigest = createHash('sha256').update(cert.raw).digest();
  const spki = new X509Certificate(cert.raw).publicKey.export({ type: 'spki', format: 'der' });
  const spkiDigest = createHash('sha256').update(spki).digest();
  if (pins.some((p) => p.equals(spkiDigest) || p.equals(certDigest))) return undefined;
  return new RelayError(
    'TLS_PIN_MISMATCH',
    `the server certificate matches no configured pin (its key: sha256/${spkiDigest.toString('base64')}); refusing to send`,
  );
}

const TLS_TRUST_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_SIGNATURE_FAILURE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** Turn whatever a request failed with into a RelayError that says what to check. */
export function describeFailure(err: unknown, server: URL): RelayError {
  if (err instanceof RelayError) return err;
  const code = (err as NodeJS.ErrnoException)?.code ?? '';
  const message = (err as Error)?.message ?? String(err);
  if (TLS_TRUST_CODES.has(code))
    return new RelayError(
      'TLS_UNTRUSTED',
      `the server ${server.host} is not trusted: ${code} (${message}); check --ca and --server`,
    );
  return new RelayError('NETWORK', `cannot reach ${server.host}: ${code || message}`);
}

export function httpsTransport(options: HttpsTransportOptions): PresenceTransport {
  const server = new URL(PRESENCE_PATH, options.server);
  if (server.protocol !== 'https:') throw new RangeError('the server URL must start with https://');
  const pins = options.pins ?? [];
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const hostname = server.hostname.replace(/^\[|\]$/g, '');
  return {
    send(body: Buffer): Promise<PresenceAnswer> {
      return new Promise((resolve, reject) => {
        const req = request(
          {
            host: hostname,
            port: server.port || 443,
            method: 'POST',
            path: server.pathname,
            ca: options.ca,
            rejectUnauthorized: true,
            ...(isIP(hostname) ? {} : { servername: hostname }),
            checkServerIdentity: (host: string, cert: PeerCertificate) =>
              checkServerIdentity(host, cert) ??
              (pins.length ? pinMismatch(cert, pins) : undefined),
            // A fresh connection per request: every request looks the same on the wire.
            agent: false,
            headers: {
              'content-type': 'application/octet-stream',
              'content-length': String(body.length),
            },
          },
          (res) => {
            const chunks: Buffer[] = [];
            let size = 0;
            res.on('data', (c: Buffer) => {
              size += c.length;
              // The answer is 64 bytes; never hold more than a little of whatever comes back.
              if (size <= 4096) chunks.push(c);
            });
            res.on('end', () =>
              resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }),
            );
            res.on('error', (err) => reject(describeFailure(err, server)));
          },
        );
        req.setTimeout(timeoutMs, () =>
          req.destroy(
            new RelayError('TIMEOUT', `no answer from ${server.host} within ${timeoutMs} ms`),
          ),
        );
        req.on('error', (err) => reject(describeFailure(err, server)));
        req.end(body);
      });
    },
  };
}
