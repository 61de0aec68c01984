import { randomBytes } from 'node:crypto';
import jwt from 'jsonwebtoken';

export const SESSION_COOKIE = 'sb_session';
export const SESSION_LIFETIME_MS = 8 * 3600_000;
const ISSUER = 'police-backend';
const AUDIENCE = 'smartbeacon-dashboard';

export interface SessionKeys {
  readonly privateKey: string;
  readonly publicKey: string;
}

export interface SessionClaims {
  readonly sid: string;
  readonly sub: string;
  readonly username: string;
  readonly role: 'officer' | 'supervisor';
  readonly csrf: string;
}

/** A signed session: ES256, with the CSRF value bound inside so it cannot be swapped. */
export function signSession(
  keys: SessionKeys,
  officer: { id: string; username: string; role: SessionClaims['role'] },
  now: number,
): { token: string; claims: SessionClaims } {
  const claims: SessionClaims = {
    sid: randomBytes(16).toString('hex'),
    sub: officer.id,
    username: officer.username,
    role: officer.role,
    csrf: randomBytes(16).toString('hex'),
  };
  const iat = Math.floor(now / 1000);
  const token = jwt.sign(
    { ...claims, iat, exp: iat + SESSION_LIFETIME_MS / 1000 },
    keys.privateKey,
    { algorithm: 'ES256', issuer: ISSUER, audience: AUDIENCE },
  );
  return { token, claims };
}

/** The claims of a valid session token, or undefined; only ES256 is accepted. */
export function verifySession(
  keys: SessionKeys,
  token: string | undefined,
  now: number,
): SessionClaims | undefined {
  if (!token) return undefined;
  try {
    const c = jwt.verify(token, keys.publicKey, {
      algorithms: ['ES256'],
      issuer: ISSUER,
      audience: AUDIENCE,
      clockTimestamp: Math.floor(now / 1000),
    }) as Partial<SessionClaims>;
    if (
      typeof c.sid !== 'string' ||
      typeof c.sub !== 'string' ||
      typeof c.username !== 'string' ||
      typeof c.csrf !== 'string'
    )
      return undefined;
    if (c.role !== 'officer' && c.role !== 'supervisor') return undefined;
    return { sid: c.sid, sub: c.sub, username: c.username, role: c.role, csrf: c.csrf };
  } catch {
    return undefined;
  }
}

/** The value of one cookie from a Cookie header. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return v.join('=');
  }
  return undefined;
}

export function sessionCookie(token: string): string {
  return `${SESSION_COOKIE}=${token}; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=${SESSION_LIFETIME_MS / 1000}`;
}

export const CLEARED_COOKIE = `${SESSION_COOKIE}=; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=0`;
