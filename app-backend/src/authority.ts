import { createHash } from 'node:crypto';
import jwt from 'jsonwebtoken';
import type { Queryable } from '../../backend-kit/db.js';
import { ApiError, unauthorized } from '../../backend-kit/errors.js';

const MAX_LIFETIME_SECONDS = 300;
/** Clock difference allowed between the health authority's machine and ours. */
const CLOCK_TOLERANCE_SECONDS = 5;

export interface AuthorityCheck {
  readonly publicKey: string;
  readonly issuer: string;
  readonly audience: string;
}

interface Claims {
  readonly jti?: unknown;
  readonly iat?: unknown;
  readonly exp?: unknown;
  readonly body_sha256?: unknown;
  readonly req?: unknown;
}

/**
 * Accept a request from the health authority: an ES256 JWT (algorithm pinned) from its key, for
 * our audience, short-lived, bound to this request (`req`: method and path) and to this exact body
 * by hash, and with a jti never seen before.
 */
export async function verifyAuthority(
  tx: Queryable,
  check: AuthorityCheck,
  authorization: string | undefined,
  rawBody: Buffer,
  now: number,
  /** Method and path as served, e.g. `POST /v1/quarantines/SB-1/end`. */
  request: string,
): Promise<void> {
  const token = /^Bearer ([A-Za-z0-9_.-]+)$/.exec(authorization ?? '')?.[1];
  if (!token) throw unauthorized('AUTH_MISSING');
  let claims: Claims;
  try {
    claims = jwt.verify(token, check.publicKey, {
      algorithms: ['ES256'],
      issuer: check.issuer,
      audience: check.audience,
      clockTimestamp: Math.floor(now / 1000),
      clockTolerance: CLOCK_TOLERANCE_SECONDS,
    }) as Claims;
  } catch (err) {
    const name = (err as Error).name;
    throw unauthorized(
      name === 'TokenExpiredError'
        ? 'AUTH_EXPIRED'
        : name === 'NotBeforeError'
          ? 'AUTH_NOT_YET_VALID'
          : 'AUTH_INVALID',
    );
  }
  const { jti, iat, exp } = claims;
  if (typeof jti !== 'string' || !/^[A-Za-z0-9-]{16,64}$/.test(jti))
    throw unauthorized('AUTH_NO_JTI');
  if (typeof iat !== 'number' || typeof exp !== 'number' || exp - iat > MAX_LIFETIME_SECONDS)
    throw unauthorized('AUTH_LIFETIME');
  // A token issued "in the future" would stretch the lifetime bound from now: its iat counts as nbf.
  if (iat > Math.floor(now / 1000) + CLOCK_TOLERANCE_SECONDS)
    throw unauthorized('AUTH_NOT_YET_VALID');
  if (claims.body_sha256 !== createHash('sha256').update(rawBody).digest('hex'))
    throw unauthorized('AUTH_BODY_MISMATCH');
  // Two requests with the same body (any two empty ones) must not share a token.
  if (claims.req !== request) throw unauthorized('AUTH_WRONG_REQUEST');
  await tx.query('DELETE FROM used_jtis WHERE expires_at < $1', [now]);
  // Held as long as the token can still verify (the tolerance included), so no replay slips past.
  const inserted = await tx.query(
    'INSERT INTO used_jtis (jti, expires_at) VALUES ($1, $2) ON CONFLICT DO NOTHING',
    [jti, (exp + CLOCK_TOLERANCE_SECONDS + 1) * 1000],
  );
  if (inserted.rowCount !== 1) throw new ApiError(401, 'AUTH_REPLAYED');
}
