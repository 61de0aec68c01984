/** What the commands share: the server from the options, signed requests, answers. */
import type { KeyObject } from 'node:crypto';
import { DEFAULT_AUDIENCE, DEFAULT_ISSUER, DEFAULT_TIMEOUT_SECONDS, type Values } from '../args.js';
import { CliError, EXIT } from '../errors.js';
import { type Answer, type Server, send } from '../http.js';
import { parseServer, parseTimeout, readCa } from '../inputs.js';
import type { Io } from '../io.js';
import { signRequestJwt } from '../jwt.js';

/** --server, --ca, --timeout, checked (the CA file read) before anything is sent. */
export async function serverFrom(values: Values): Promise<Server> {
  const url = parseServer(values.server as string);
  const timeout =
    values.timeout === undefined ? DEFAULT_TIMEOUT_SECONDS : parseTimeout(values.timeout);
  return { url, ca: await readCa(values.ca as string), timeoutMs: timeout * 1000 };
}

function bearer(
  request: string,
  body: Buffer,
  key: KeyObject,
  values: Values,
  io: Io,
): Record<string, string> {
  const token = signRequestJwt(body, key, {
    issuer: values.issuer ?? DEFAULT_ISSUER,
    audience: values.audience ?? DEFAULT_AUDIENCE,
    now: io.now(),
    request,
  });
  return { authorization: `Bearer ${token}` };
}

/**
 * POST `body` with a fresh JWT bound to exactly these bytes. The token is never shown. `ifLost`:
 * what to do when the connection fails after the request may have arrived.
 */
export function postSigned(
  server: Server,
  path: string,
  body: Buffer,
  key: KeyObject,
  values: Values,
  io: Io,
  ifLost: string,
): Promise<Answer> {
  return send(server, 'POST', path, body, bearer(`POST ${path}`, body, key, values, io), ifLost);
}

/** GET with a fresh JWT bound to the empty body. */
export function getSigned(
  server: Server,
  path: string,
  key: KeyObject,
  values: Values,
  io: Io,
): Promise<Answer> {
  const auth = bearer(`GET ${path}`, Buffer.alloc(0), key, values, io);
  return send(server, 'GET', path, undefined, auth);
}

/** What to do about the app backend's error codes (docs/api.md). */
const HINTS: Readonly<Record<string, string>> = {
  BEACON_IN_USE:
    'this beacon already has an active quarantine: registered before? End it first to register it again',
  KEY_IN_USE: 'this SK_T_PAST is already registered for another active quarantine',
  NO_ACTIVE_QUARANTINE:
    'there is no active quarantine for this beacon: ended already, or never registered',
  AUTH_INVALID:
    'the server does not accept the signature: is --key the key whose authority.pub the app backend has (APP_HA_PUBLIC_KEY), and do --issuer / --audience match APP_HA_ISSUER / APP_JWT_AUDIENCE?',
  AUTH_EXPIRED: "the token had expired on arrival: check this computer's clock",
  AUTH_LIFETIME: 'the server allows a shorter token lifetime',
  AUTH_REPLAYED: 'the server has seen this token before',
  AUTH_BODY_MISMATCH: 'the body did not match the token (changed on the way?)',
  AUTH_WRONG_REQUEST:
    'the token names another request than the server received (a proxy rewriting the path? --server should be the URL the app backend is served under)',
  AUTH_NOT_YET_VALID:
    "the token was issued ahead of the server's clock: check this computer's clock",
  AUTH_MISSING: 'the token did not arrive (a proxy dropping the Authorization header?)',
  AUTH_NO_JTI: 'the token carried no usable jti',
  BAD_REGISTRATION: 'the server does not accept the registration fields',
  BAD_ABSENCE:
    'the app backend does not accept these times: an absence may start at most a minute in the past, must not be over already, and must not be longer than the app backend allows (APP_MAX_ABSENCE_SECONDS, default 24 h)',
  NO_SUCH_ABSENCE:
    'the active quarantine of this beacon has no absence with this ID: "absences" lists them',
  BAD_BEACON_ID: 'the server does not accept this beacon ID',
  BODY_TOO_LARGE: 'the request body is too large',
  NOT_FOUND:
    'no such endpoint: is --server the public listener of the app backend (with the right path)?',
};

export function serverCode(answer: Answer): string {
  const code = answer.json?.error;
  return typeof code === 'string' && /^[A-Z0-9_]{1,64}$/.test(code)
    ? code
    : `HTTP_${answer.status}`;
}

/** The answer's JSON when it has the expected status; otherwise exit 3 (4xx) or 4 (anything else). */
export function expectStatus(
  answer: Answer,
  expected: number,
  what: string,
): Record<string, unknown> {
  if (answer.status === expected) return answer.json ?? {};
  const code = serverCode(answer);
  if (answer.status >= 400 && answer.status < 500) {
    const hint = HINTS[code];
    throw new CliError(
      EXIT.refused,
      `the app backend refused ${what}: ${answer.status} ${code}${hint ? `: ${hint}` : ''}`,
      code,
      answer.status,
    );
  }
  throw new CliError(
    EXIT.unavailable,
    answer.status >= 500
      ? `the app backend failed on ${what}: ${answer.status} ${code}; try again later`
      : `unexpected answer to ${what}: HTTP ${answer.status}`,
    code,
    answer.status,
  );
}
