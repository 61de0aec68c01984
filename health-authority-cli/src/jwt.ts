/** The JWT that authenticates one request of the health authority to the app backend. */
import { type KeyObject, createHash, randomUUID } from 'node:crypto';
import jwt from 'jsonwebtoken';

/** Seconds from iat to exp: long enough for one request, far below the server's 300 s limit. */
export const JWT_LIFETIME_SECONDS = 60;

export interface JwtOptions {
  readonly issuer: string;
  readonly audience: string;
  /** Unix milliseconds. */
  readonly now: number;
  /** The request it authorises: method and API path, e.g. `POST /v1/quarantines/SB-1/end`. */
  readonly request: string;
}

export const bodySha256 = (body: Uint8Array): string =>
  createHash('sha256').update(body).digest('hex');

/**
 * ES256 over {iss, aud, iat, exp = iat + 60, jti (random UUID), body_sha256, req}: the token is
 * good for exactly this request (method and path) with these body bytes, once, for a minute.
 */
export function signRequestJwt(body: Uint8Array, privateKey: KeyObject, o: JwtOptions): string {
  const iat = Math.floor(o.now / 1000);
  return jwt.sign(
    {
      body_sha256: bodySha256(body),
      req: o.request,
      iat,
      exp: iat + JWT_LIFETIME_SECONDS,
      jti: randomUUID(),
    },
    privateKey,
    { algorithm: 'ES256', issuer: o.issuer, audience: o.audience },
  );
}
