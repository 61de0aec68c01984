import express, { type Request } from 'express';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Server } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { z } from 'zod';
import type { Database } from '../../backend-kit/db.js';
import {
  ApiError,
  badRequest,
  forbidden,
  notFound,
  unauthorized,
} from '../../backend-kit/errors.js';
import type { Logger } from '../../backend-kit/logger.js';
import { errorHandler, requestLog } from '../../backend-kit/http.js';
import { type ServerLimits, limitedHttpsServer } from '../../backend-kit/server-limits.js';
import { TLS_DEFAULTS, peerIdentity } from '../../backend-kit/tls.js';
import {
  actionSchema,
  alertMessageSchema,
  dailyStats,
  getAlert,
  listAlerts,
  listQuerySchema,
  queuePage,
  reviewAlert,
  reviews,
  timeline,
} from './alerts.js';
import type { Alert } from './alerts.js';
import {
  type Absence,
  absenceBodySchema,
  cancelAbsence,
  listAbsences,
  scheduleAbsence,
} from './absences.js';
import { appendAudit, verifyAudit } from './audit.js';
import { AlertIntake, overloaded } from './intake.js';
import { MAX_BATCH_BYTES, receiveBatch } from './alert-batch.js';
import {
  type Beacon,
  beaconIdSchema,
  findBeacon,
  listBeacons,
  registerBeacon,
  registerBeaconSchema,
  requestMonitoring,
} from './beacons.js';
import { signIn } from './officers.js';
import {
  CLEARED_COOKIE,
  SESSION_COOKIE,
  SESSION_LIFETIME_MS,
  type SessionClaims,
  type SessionKeys,
  readCookie,
  sessionCookie,
  signSession,
  verifySession,
} from './session.js';

export interface HttpDeps {
  readonly db: Database;
  readonly clock: () => number;
  readonly log: Logger;
  readonly sessionKeys: SessionKeys;
  readonly appIdentity: string;
  readonly dashboardDir: string;
  readonly tls: { readonly cert: string; readonly key: string; readonly ca: string };
  readonly limits: ServerLimits;
  /** Alerts waiting to be stored before intake refuses more (503 OVERLOADED). */
  readonly intakeMaxPending: number;
  readonly onAlerts: (alerts: Alert[]) => void;
  readonly onBeacon: (beacon: Beacon) => void;
  readonly onAbsence: (absence: Absence) => void;
  /** Wake the command worker after a request was queued. */
  readonly kickCommands: () => void;
  /** A session was signed out: its open live feeds close. */
  readonly onSignedOut: (sid: string) => void;
}

const CSP =
  "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

function parse<T>(schema: z.ZodType<T>, value: unknown, code: string): T {
  const r = schema.safeParse(value);
  if (!r.success) throw badRequest(code);
  return r.data;
}

/** The session of a request, if its cookie holds a valid, unrevoked one. */
export async function sessionOf(
  deps: HttpDeps,
  req: IncomingMessage,
): Promise<SessionClaims | undefined> {
  const claims = verifySession(
    deps.sessionKeys,
    readCookie(req.headers.cookie, SESSION_COOKIE),
    deps.clock(),
  );
  if (!claims) return undefined;
  const { rows } = await deps.db.query<{ ok: boolean }>(
    'SELECT revoked_at IS NULL AND expires_at > $2 AS ok FROM sessions WHERE id = $1',
    [claims.sid, deps.clock()],
  );
  return rows[0]?.ok ? claims : undefined;
}

/** Which of these sessions are neither revoked nor expired: the live feed's recheck. */
export function validSessions(db: Database, clock: () => number) {
  return async (sids: readonly string[]): Promise<ReadonlySet<string>> => {
    const { rows } = await db.query<{ id: string }>(
      'SELECT id FROM sessions WHERE id = ANY($1::text[]) AND revoked_at IS NULL AND expires_at > $2',
      [sids, clock()],
    );
    return new Set(rows.map((r) => r.id));
  };
}

type Authed = Request & { session: SessionClaims };

/** Officers: the dashboard, sessions and the officer API. */
export function officerServer(deps: HttpDeps): Server {
  const { db, log } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', false);
  app.use(requestLog(log));
  app.use((_req, res, next) => {
    res.set({
      'content-security-policy': CSP,
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      'strict-transport-security': 'max-age=31536000',
      'cross-origin-opener-policy': 'same-origin',
    });
    next();
  });
  // For load balancers and container health checks: no session, no database, no address.
  app.get(
    '/healthz',
    (_req, res) => void res.set('cache-control', 'no-store').json({ status: 'ok' }),
  );
  app.use('/api', express.json({ limit: '16kb' }), (_req, res, next) => {
    res.set('cache-control', 'no-store');
    next();
  });

  const credentials = z.strictObject({
    username: z.string().min(1).max(64),
    password: z.string().min(1).max(256),
  });
  app.post('/api/session', async (req, res) => {
    const { username, password } = parse(credentials, req.body, 'BAD_REQUEST');
    const now = deps.clock();
    const officer = await signIn(db, username, password, now);
    const { token, claims } = signSession(deps.sessionKeys, officer, now);
    await db.transaction(async (tx) => {
      await tx.query(
        'INSERT INTO sessions (id, officer_id, created_at, expires_at) VALUES ($1, $2, $3, $4)',
        [claims.sid, officer.id, now, now + SESSION_LIFETIME_MS],
      );
      await appendAudit(
        tx,
        { officer: officer.username, action: 'session.signed_in', subject: officer.username },
        now,
      );
    });
    res.setHeader('set-cookie', sessionCookie(token));
    res.json({ username: officer.username, role: officer.role, csrf: claims.csrf });
  });

  // Everything below needs a session; state-changing requests also need its CSRF value.
  app.use('/api', async (req, _res, next) => {
    const session = await sessionOf(deps, req);
    if (!session) return next(unauthorized('NOT_SIGNED_IN'));
    if (req.method !== 'GET' && req.headers['x-csrf-token'] !== session.csrf)
      return next(forbidden('CSRF'));
    (req as Authed).session = session;
    next();
  });
  const officer = (req: Request) => (req as Authed).session;
  const audit = (req: Request, action: string, subject: string, detail?: Record<string, unknown>) =>
    db.transaction((tx) =>
      appendAudit(
        tx,
        { officer: officer(req).username, action, subject, ...(detail ? { detail } : {}) },
        deps.clock(),
      ),
    );

  app.get('/api/session', (req, res) => {
    const s = officer(req);
    res.json({ username: s.username, role: s.role, csrf: s.csrf });
  });
  app.delete('/api/session', async (req, res) => {
    const s = officer(req);
    await db.transaction(async (tx) => {
      await tx.query('UPDATE sessions SET revoked_at = $2 WHERE id = $1', [s.sid, deps.clock()]);
      await appendAudit(
        tx,
        { officer: s.username, action: 'session.signed_out', subject: s.username },
        deps.clock(),
      );
    });
    deps.onSignedOut(s.sid);
    res.setHeader('set-cookie', CLEARED_COOKIE);
    res.status(204).end();
  });

  app.get('/api/alerts', async (req, res) => {
    const q = parse(listQuerySchema, req.query, 'BAD_QUERY');
    const countsAt = deps.clock();
    const page = q.view === 'queue' ? await queuePage(db, q) : { alerts: await listAlerts(db, q) };
    await audit(req, 'address.viewed', `alerts:${q.view}`, { count: page.alerts.length });
    res.json(q.view === 'queue' ? { ...page, countsAt } : page);
  });
  app.get('/api/alerts/:id', async (req, res) => {
    const id = parse(z.uuid(), req.params.id, 'BAD_ALERT_ID');
    const alert = await getAlert(db, id);
    if (!alert) throw notFound('NO_SUCH_ALERT');
    await audit(req, 'address.viewed', `alert:${id}`, { beaconId: alert.beaconId });
    res.json({
      alert,
      timeline: await timeline(db, alert.beaconId),
      reviews: await reviews(db, id),
    });
  });
  app.post('/api/alerts/:id/actions', async (req, res) => {
    const id = parse(z.uuid(), req.params.id, 'BAD_ALERT_ID');
    const input = parse(actionSchema, req.body, 'BAD_ACTION');
    const s = officer(req);
    const { alert, from } = await db.transaction(async (tx) => {
      const r = await reviewAlert(tx, id, input, s.sub, deps.clock(), randomUUID());
      await appendAudit(
        tx,
        {
          officer: s.username,
          action: `alert.${input.action}`,
          subject: `alert:${id}`,
          detail: { from: r.from, to: r.alert.state, outcome: input.outcome ?? null },
        },
        deps.clock(),
      );
      return r;
    });
    log.info({ action: input.action, from, to: alert.state }, 'alert reviewed');
    deps.onAlerts([alert]);
    res.json({ alert });
  });

  app.get('/api/beacons', async (req, res) => {
    const beacons = await listBeacons(db);
    await audit(req, 'address.viewed', 'beacons', { count: beacons.length });
    res.json({ beacons });
  });
  app.post('/api/beacons', async (req, res) => {
    const input = parse(registerBeaconSchema, req.body, 'BAD_BEACON');
    const s = officer(req);
    const beacon = await db.transaction(async (tx) => {
      const b = await registerBeacon(tx, input, s.sub, deps.clock());
      await appendAudit(
        tx,
        {
          officer: s.username,
          action: 'beacon.registered',
          subject: `beacon:${b.beaconId}`,
          detail: { caseRef: b.caseRef },
        },
        deps.clock(),
      );
      return b;
    });
    deps.onBeacon(beacon);
    res.status(201).json({ beacon });
  });
  for (const action of ['enable', 'end'] as const) {
    app.post(`/api/beacons/:id/${action}`, async (req, res) => {
      const beaconId = parse(beaconIdSchema, req.params.id, 'BAD_BEACON_ID');
      const s = officer(req);
      const beacon = await db.transaction(async (tx) => {
        const b = await requestMonitoring(tx, beaconId, action, deps.clock());
        await appendAudit(
          tx,
          {
            officer: s.username,
            action: `beacon.${action}_requested`,
            subject: `beacon:${beaconId}`,
          },
          deps.clock(),
        );
        return b;
      });
      deps.onBeacon(beacon);
      deps.kickCommands();
      res.status(202).json({ beacon });
    });
  }

  app.get('/api/beacons/:id', async (req, res) => {
    const beaconId = parse(beaconIdSchema, req.params.id, 'BAD_BEACON_ID');
    const found = await findBeacon(db, beaconId);
    if (!found) throw notFound('NO_SUCH_BEACON');
    await audit(req, 'address.viewed', `beacon:${beaconId}`);
    res.json({ beacon: found.beacon });
  });

  // Authorised absences: stored here, sent to the app backend as commands (without the reason).
  app.get('/api/beacons/:id/absences', async (req, res) => {
    const beaconId = parse(beaconIdSchema, req.params.id, 'BAD_BEACON_ID');
    res.json({ absences: await listAbsences(db, beaconId, deps.clock()) });
  });
  app.post('/api/beacons/:id/absences', async (req, res) => {
    const beaconId = parse(beaconIdSchema, req.params.id, 'BAD_BEACON_ID');
    const input = parse(absenceBodySchema, req.body, 'BAD_ABSENCE');
    const s = officer(req);
    const absence = await db.transaction(async (tx) => {
      const a = await scheduleAbsence(tx, beaconId, input, s.sub, deps.clock());
      // The reason is left out: the log is permanent and a note could say more than it should.
      await appendAudit(
        tx,
        {
          officer: s.username,
          action: 'absence.scheduled',
          subject: `absence:${a.id}`,
          detail: { beaconId, startsAt: a.startsAt, endsAt: a.endsAt },
        },
        deps.clock(),
      );
      return a;
    });
    deps.onAbsence(absence);
    deps.kickCommands();
    res.status(201).json({ absence });
  });
  app.post('/api/absences/:absenceId/cancel', async (req, res) => {
    const id = parse(z.uuid(), req.params.absenceId, 'BAD_ABSENCE_ID');
    const s = officer(req);
    const absence = await db.transaction(async (tx) => {
      const a = await cancelAbsence(tx, id, s.sub, deps.clock());
      await appendAudit(
        tx,
        {
          officer: s.username,
          action: 'absence.cancelled',
          subject: `absence:${id}`,
          detail: { beaconId: a.beaconId },
        },
        deps.clock(),
      );
      return a;
    });
    deps.onAbsence(absence);
    deps.kickCommands();
    res.status(202).json({ absence });
  });

  app.get('/api/stats/daily', async (req, res) => {
    const { days } = parse(
      z.object({ days: z.coerce.number().int().min(1).max(366).default(30) }),
      req.query,
      'BAD_QUERY',
    );
    res.json({ days: await dailyStats(db, days, deps.clock()) });
  });
  app.get('/api/audit', async (req, res) => {
    if (officer(req).role !== 'supervisor') throw forbidden('FORBIDDEN_ROLE');
    const { limit } = parse(
      z.object({ limit: z.coerce.number().int().min(1).max(1000).default(200) }),
      req.query,
      'BAD_QUERY',
    );
    const { rows } = await db.query(
      'SELECT seq, at, officer, action, subject, detail FROM audit_log ORDER BY seq DESC LIMIT $1',
      [limit],
    );
    res.json({
      entries: rows.map((r) => ({
        ...r,
        detail: JSON.parse(String((r as { detail: string }).detail)) as unknown,
      })),
      verify: await verifyAudit(db),
    });
  });
  app.use('/api', (_req, res) => void res.status(404).json({ error: 'NOT_FOUND' }));

  // express.static would answer other methods with a bare 405: give it a code like every refusal.
  app.use('/assets', (req, res, next) => {
    if (req.method === 'GET' || req.method === 'HEAD') return next();
    res.status(405).set('allow', 'GET, HEAD').json({ error: 'METHOD_NOT_ALLOWED' });
  });
  app.use(
    '/assets',
    express.static(`${deps.dashboardDir}/assets`, {
      index: false,
      fallthrough: false,
      maxAge: '1h',
    }),
  );
  app.get('/', (_req, res) => res.sendFile('index.html', { root: deps.dashboardDir }));
  app.use((_req, res) => void res.status(404).json({ error: 'NOT_FOUND' }));
  app.use(errorHandler(log));
  return limitedHttpsServer(
    'public',
    { cert: deps.tls.cert, key: deps.tls.key, ...TLS_DEFAULTS },
    deps.limits,
    app,
  );
}

const ALERTS_PATH = '/internal/v1/alerts';
const BATCH_PATH = '/internal/v1/alert-batches';
/** The app backend's routes and the most bytes each takes. */
const INTERNAL_LIMITS = new Map([
  [ALERTS_PATH, 16 * 1024],
  [BATCH_PATH, MAX_BATCH_BYTES],
]);

/** An internal route's work once the body is parsed: the JSON answered with 200. */
type InternalHandler = (req: IncomingMessage, body: unknown) => Promise<object>;

/** Whether the lean path takes a request: the app backend's usual ones; anything else goes through Express. */
function plainInternalPost(req: IncomingMessage): boolean {
  const limit = INTERNAL_LIMITS.get(req.url ?? '');
  const length = Number(req.headers['content-length']);
  const encoding = req.headers['content-encoding'];
  return (
    limit !== undefined &&
    req.method === 'POST' &&
    /^application\/json\s*(;\s*charset="?utf-8"?\s*)?$/i.test(req.headers['content-type'] ?? '') &&
    (encoding === undefined || encoding === 'identity') &&
    req.headers['transfer-encoding'] === undefined &&
    Number.isInteger(length) &&
    length > 0 &&
    length <= limit
  );
}

/**
 * The app backend's POSTs without Express: the same checks, codes and log line as the Express
 * routes (which still serve unusual requests), at a fraction of the cost per alert.
 */
function leanInternalRoute(
  deps: HttpDeps,
  handlers: ReadonlyMap<string, InternalHandler>,
  identityOf: (socket: TLSSocket) => string | undefined,
  intake: AlertIntake,
) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const start = process.hrtime.bigint();
    const route = req.url as string;
    const handle = handlers.get(route) as InternalHandler;
    const answer = (status: number, body: object, retryAfter?: number) => {
      const text = JSON.stringify(body);
      res.writeHead(status, {
        'content-type': 'application/json; charset=utf-8',
        'content-length': Buffer.byteLength(text),
        ...(retryAfter === undefined ? {} : { 'retry-after': String(retryAfter) }),
      });
      res.end(text);
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      deps.log.info({ method: 'POST', route, status, ms }, 'request');
    };
    const fail = (err: unknown) => {
      if (err instanceof ApiError)
        return answer(err.status, { error: err.code }, err.retryAfterSeconds);
      const e = err as { name?: string; code?: string };
      deps.log.error({ errorName: e?.name, code: e?.code }, 'request failed');
      answer(500, { error: 'INTERNAL' });
    };
    if (identityOf(req.socket as TLSSocket) !== deps.appIdentity) {
      req.resume();
      return fail(forbidden('PEER_NOT_ALLOWED'));
    }
    // A full intake refuses before buffering the body: a flood then costs no memory per request.
    if (!intake.hasRoom(1)) {
      req.resume();
      return fail(overloaded());
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', () => undefined);
    req.on('end', () => {
      // As express.json: a byte-order mark is dropped; only an object or array is JSON here.
      const text = Buffer.concat(chunks)
        .toString('utf8')
        .replace(/^\uFEFF/, '');
      let body: unknown;
      try {
        if (!/^[ \t\n\r]*[[{]/.test(text)) throw new SyntaxError('not an object');
        body = JSON.parse(text);
      } catch {
        return answer(400, { error: 'BAD_JSON' });
      }
      handle(req, body).then((out) => answer(200, out), fail);
    });
  };
}

/** The internal routes: one alert (`Idempotency-Key` required), or a batch of them. */
function internalHandlers(deps: HttpDeps, intake: AlertIntake): Map<string, InternalHandler> {
  return new Map<string, InternalHandler>([
    [
      ALERTS_PATH,
      async (req, body) => {
        const message = parse(alertMessageSchema, body, 'BAD_ALERT');
        const key = req.headers['idempotency-key'];
        if (typeof key !== 'string' || key.length > 64)
          throw badRequest('IDEMPOTENCY_KEY_REQUIRED');
        const changed = await intake.receive(message);
        return { ok: true, duplicate: changed.length === 0 };
      },
    ],
    [BATCH_PATH, async (_req, body) => ({ results: await receiveBatch(intake, body, deps.log) })],
  ]);
}

/** The app backend only: mutual TLS at the handshake, its identity at the route. */
export function internalServer(deps: HttpDeps): Server {
  const intake = new AlertIntake(
    deps.db,
    deps.clock,
    deps.log,
    deps.onAlerts,
    deps.intakeMaxPending,
  );
  // A connection's client certificate is set at its handshake: parse it once per connection.
  const identities = new WeakMap<TLSSocket, string | undefined>();
  const identityOf = (socket: TLSSocket) => {
    if (!identities.has(socket)) identities.set(socket, peerIdentity(socket));
    return identities.get(socket);
  };
  const app = express();
  app.disable('x-powered-by');
  app.use(requestLog(deps.log));
  app.use((req, _res, next) =>
    next(
      identityOf(req.socket as TLSSocket) === deps.appIdentity
        ? undefined
        : forbidden('PEER_NOT_ALLOWED'),
    ),
  );
  app.get('/healthz', (_req, res) => void res.json({ status: 'ok' }));
  const handlers = internalHandlers(deps, intake);
  for (const [path, handle] of handlers)
    app.post(
      path,
      (_req, _res, next) => next(intake.hasRoom(1) ? undefined : overloaded()),
      express.json({ limit: INTERNAL_LIMITS.get(path) }),
      async (req, res) => void res.json(await handle(req, req.body)),
    );
  app.use((_req, res) => void res.status(404).json({ error: 'NOT_FOUND' }));
  app.use(errorHandler(deps.log));
  const lean = leanInternalRoute(deps, handlers, identityOf, intake);
  return limitedHttpsServer(
    'internal',
    {
      cert: deps.tls.cert,
      key: deps.tls.key,
      ca: deps.tls.ca,
      requestCert: true,
      rejectUnauthorized: true,
      ...TLS_DEFAULTS,
    },
    deps.limits,
    (req, res) => {
      if (plainInternalPost(req)) lean(req, res);
      else void app(req, res);
    },
  );
}
