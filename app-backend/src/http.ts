import express, { type Request, type Response } from 'express';
import { z } from 'zod';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Server } from 'node:https';
import type { TLSSocket } from 'node:tls';
import type { Database, Queryable } from '../../backend-kit/db.js';
import { ApiError, forbidden } from '../../backend-kit/errors.js';
import type { Logger } from '../../backend-kit/logger.js';
import { errorHandler, requestLog } from '../../backend-kit/http.js';
import { type ServerLimits, limitedHttpsServer } from '../../backend-kit/server-limits.js';
import { TLS_DEFAULTS, peerIdentity } from '../../backend-kit/tls.js';
import { STATUS_LENGTH } from '../../protocol/presence-status.js';
import { randomStatusNode, sealStatusNode } from '../../protocol/presence-status-node.js';
import { type AuthorityCheck, verifyAuthority } from './authority.js';
import type { Metrics } from './metrics.js';
import {
  absenceSchema,
  cancelAbsence,
  internalAbsenceSchema,
  listAbsences,
  scheduleAbsence,
} from './absences.js';
import type { Rules } from './config.js';
import { PRESENCE_BODY_LENGTH, parsePresenceBody } from '../../protocol/presence.js';
import {
  beaconIdSchema,
  enableMonitoring,
  endQuarantine,
  parseBody,
  registerQuarantine,
  registerSchema,
} from './quarantines.js';
import type { KeyRateLimiter } from './rate-limit.js';
import type { StatusCache } from './status-cache.js';
import type { PresenceJournal } from './journal.js';
import type { PresenceValidator } from './validator.js';

export interface HttpDeps {
  readonly db: Database;
  readonly kek: Buffer;
  readonly clock: () => number;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly validator: PresenceValidator;
  readonly journal: PresenceJournal;
  readonly rateLimiter: KeyRateLimiter;
  readonly statuses: StatusCache;
  readonly authority: AuthorityCheck;
  readonly policeIdentity: string;
  readonly rules: Rules;
  readonly tls: { readonly cert: string; readonly key: string; readonly ca: string };
  readonly limits: ServerLimits;
}

/** The presence answer's headers: the same for every request, built once. */
const PRESENCE_HEADERS = {
  'content-type': 'application/octet-stream',
  'content-length': String(STATUS_LENGTH),
  'cache-control': 'no-store',
};

function sendError(res: ServerResponse, status: number, code: string): void {
  const body = JSON.stringify({ error: code });
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  });
  res.end(body);
}

/** Refuse before or instead of reading the body; the connection closes so nothing half-read lingers. */
function refuse(deps: HttpDeps, res: ServerResponse, status: number, code: string): void {
  deps.metrics.requests.inc({ outcome: code });
  res.setHeader('connection', 'close');
  sendError(res, status, code);
}

/**
 * The hot path, without Express: read exactly one fixed-size body, check its shape, keep it in the
 * journal and answer with the same status and bytes whoever sent it; validation happens later,
 * off the request. A 202 means the request survives a crash of this process.
 */
export function presenceHandler(deps: HttpDeps) {
  // The labelled child once, not a label lookup per request.
  const accepted = deps.metrics.requests.labels({ outcome: 'accepted' });
  return (req: IncomingMessage, res: ServerResponse): void => {
    const length = Number(req.headers['content-length']);
    if (req.headers['transfer-encoding'] || length !== PRESENCE_BODY_LENGTH) {
      // Oversize or unknown-length bodies are refused before reading a byte of them.
      refuse(deps, res, length > PRESENCE_BODY_LENGTH ? 413 : 400, 'BAD_LENGTH');
      req.resume();
      return;
    }
    const body = Buffer.allocUnsafe(PRESENCE_BODY_LENGTH);
    let at = 0;
    req.on('data', (chunk: Buffer) => {
      if (at + chunk.length > PRESENCE_BODY_LENGTH) {
        req.destroy();
        return;
      }
      chunk.copy(body, at);
      at += chunk.length;
    });
    req.on('error', () => undefined);
    req.on('end', () => {
      if (at !== PRESENCE_BODY_LENGTH) return refuse(deps, res, 400, 'BAD_LENGTH');
      const now = deps.clock();
      const parsed = parsePresenceBody(body, now);
      if (typeof parsed === 'string') return refuse(deps, res, 400, parsed);
      const status = deps.statuses.statusFor(parsed.keyHash, now);
      // A token-less request for a key no quarantine holds (a dummy: ~90 % of all traffic) touches
      // no state, so there is nothing to limit; tracking its never-repeating key would only churn
      // memory. Telling it apart reveals nothing: only the holder of SK_T_PAST can send it, and
      // the sealed answer already tells them whether the key is registered.
      const inert = status === undefined && parsed.tokens.length === 0;
      if (!inert && !deps.rateLimiter.take(parsed.keyHash, now))
        return refuse(deps, res, 429, 'RATE_LIMITED');
      // Every request takes the queue's capacity check, so overload answers everyone alike.
      const admitted = deps.validator.admit(parsed, status !== undefined);
      if (admitted === false) return refuse(deps, res, 503, 'OVERLOADED');
      // Sealed for a registered key, random bytes otherwise: 64 bytes either way, alike on the wire.
      // Made while the group is being written: the seal's cost hides in the wait.
      let answer: Buffer | undefined;
      const prepare = () => {
        answer = status ? sealStatusNode(body.subarray(2, 34), status) : randomStatusNode();
      };
      // Dummies wait for the same group write as the requests kept in it, and are answered with them.
      deps.journal.write(admitted, prepare).then(
        (entry) => {
          if (entry) deps.validator.push(entry);
          accepted.inc();
          res.writeHead(202, PRESENCE_HEADERS);
          // Kept either way; a seal that failed answers random bytes (the relay reads no status).
          res.end(answer ?? randomStatusNode());
        },
        () => {
          if (admitted) deps.validator.cancel(admitted);
          refuse(deps, res, 503, 'UNAVAILABLE');
        },
      );
    });
  };
}

function baseApp(log: Logger): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.set('trust proxy', false);
  app.use(requestLog(log));
  app.use(express.raw({ type: () => true, limit: '16kb' }));
  return app;
}

const rawBody = (req: Request): Buffer => (Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0));

/** What a health-authority JWT must name: the method and the path as served (no query). */
const requestOf = (req: Request): string => `${req.method} ${req.path}`;

function beaconParam(req: Request): string {
  const parsed = beaconIdSchema.safeParse(req.params.beaconId);
  if (!parsed.success) throw new ApiError(400, 'BAD_BEACON_ID');
  return parsed.data;
}

const uuid = z.uuid();

function absenceParam(req: Request): string {
  const parsed = uuid.safeParse(req.params.absenceId);
  if (!parsed.success) throw new ApiError(404, 'NO_SUCH_ABSENCE');
  return parsed.data;
}

async function ready(db: Database, res: Response): Promise<void> {
  try {
    await db.query('SELECT 1');
    res.json({ status: 'ready' });
  } catch {
    res.status(503).json({ status: 'unavailable' });
  }
}

/** Phones and the health authority: presence, register, end, health. */
export function publicServer(deps: HttpDeps): Server {
  const app = baseApp(deps.log);
  /** The health authority's JWT for this very request (method, path, body), inside `tx`. */
  const authorised = (tx: Queryable, req: Request, now: number) =>
    verifyAuthority(
      tx,
      deps.authority,
      req.headers.authorization,
      rawBody(req),
      now,
      requestOf(req),
    );
  app.get('/healthz', (_req, res) => void res.json({ status: 'ok' }));
  app.get('/readyz', (_req, res) => ready(deps.db, res));
  app.post('/v1/quarantines', async (req, res) => {
    const now = deps.clock();
    const id = await deps.db.transaction(async (tx) => {
      await authorised(tx, req, now);
      return registerQuarantine(
        tx,
        deps.kek,
        parseBody(registerSchema, rawBody(req), 'BAD_REGISTRATION'),
        deps.rules.windowSeconds,
        now,
      );
    });
    await deps.statuses.refresh();
    res.status(201).json({ quarantineId: id });
  });
  app.post('/v1/quarantines/:beaconId/end', async (req, res) => {
    const beaconId = beaconParam(req);
    const id = await deps.db.transaction(async (tx) => {
      await authorised(tx, req, deps.clock());
      return endQuarantine(tx, beaconId, deps.clock());
    });
    deps.validator.forget(id);
    await deps.statuses.refresh();
    res.json({ state: 'ended' });
  });
  app.post('/v1/quarantines/:beaconId/absences', async (req, res) => {
    const beaconId = beaconParam(req);
    const now = deps.clock();
    const absence = await deps.db.transaction(async (tx) => {
      await authorised(tx, req, now);
      const body = parseBody(absenceSchema, rawBody(req), 'BAD_ABSENCE');
      return scheduleAbsence(tx, beaconId, body, 'health-authority', deps.rules, now);
    });
    await deps.statuses.refresh();
    res.status(201).json(absence);
  });
  app.get('/v1/quarantines/:beaconId/absences', async (req, res) => {
    const beaconId = beaconParam(req);
    const now = deps.clock();
    // One transaction: a listing refused (unknown beacon) does not spend the JWT's jti either.
    const absences = await deps.db.transaction(async (tx) => {
      await authorised(tx, req, now);
      return listAbsences(tx, beaconId, now);
    });
    res.json({ absences });
  });
  app.post('/v1/quarantines/:beaconId/absences/:absenceId/cancel', async (req, res) => {
    const beaconId = beaconParam(req);
    const absenceId = absenceParam(req);
    const now = deps.clock();
    const absence = await deps.db.transaction(async (tx) => {
      await authorised(tx, req, now);
      return cancelAbsence(tx, beaconId, absenceId, now);
    });
    await deps.statuses.refresh();
    res.json(absence);
  });
  app.use((_req, res) => void res.status(404).json({ error: 'NOT_FOUND' }));
  app.use(errorHandler(deps.log));
  const presence = presenceHandler(deps);
  return limitedHttpsServer(
    'public',
    { cert: deps.tls.cert, key: deps.tls.key, ...TLS_DEFAULTS },
    deps.limits,
    (req, res) => {
      if (req.method === 'POST' && req.url === '/v1/presence') presence(req, res);
      else void app(req, res);
    },
  );
}

/** The police backend only: mutual TLS at the handshake, then its identity at the route. */
export function internalServer(deps: HttpDeps): Server {
  const app = baseApp(deps.log);
  app.use((req, _res, next) => {
    if (peerIdentity(req.socket as TLSSocket) !== deps.policeIdentity)
      return next(forbidden('PEER_NOT_ALLOWED'));
    next();
  });
  app.get('/healthz', (_req, res) => void res.json({ status: 'ok' }));
  app.get('/metrics', async (_req, res) => {
    res.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
  });
  app.post('/internal/v1/beacons/:beaconId/enable', async (req, res) => {
    const state = await enableMonitoring(deps.db, beaconParam(req), deps.clock());
    await deps.statuses.refresh();
    res.json({ state });
  });
  app.post('/internal/v1/beacons/:beaconId/end', async (req, res) => {
    const beaconId = beaconParam(req);
    const id = await deps.db.transaction((tx) => endQuarantine(tx, beaconId, deps.clock()));
    deps.validator.forget(id);
    await deps.statuses.refresh();
    res.json({ state: 'ended' });
  });
  app.post('/internal/v1/beacons/:beaconId/absences', async (req, res) => {
    const beaconId = beaconParam(req);
    const body = parseBody(internalAbsenceSchema, rawBody(req), 'BAD_ABSENCE');
    const now = deps.clock();
    const absence = await deps.db.transaction((tx) =>
      scheduleAbsence(tx, beaconId, body, 'police', deps.rules, now),
    );
    await deps.statuses.refresh();
    res.json({ absenceId: absence.absenceId, status: 'scheduled' });
  });
  app.post('/internal/v1/beacons/:beaconId/absences/:absenceId/cancel', async (req, res) => {
    const beaconId = beaconParam(req);
    const absenceId = absenceParam(req);
    await deps.db.transaction((tx) => cancelAbsence(tx, beaconId, absenceId, deps.clock()));
    await deps.statuses.refresh();
    res.json({ absenceId, status: 'cancelled' });
  });
  app.use((_req, res) => void res.status(404).json({ error: 'NOT_FOUND' }));
  app.use(errorHandler(deps.log));
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
    app,
  );
}
