import type { NextFunction, Request, Response } from 'express';
import { ApiError } from './errors.js';
import type { Logger } from './logger.js';

/**
 * One error answer for every Express route: ApiError → its status and code; body-parser and
 * Express client errors stay 4xx; anything else is 500 INTERNAL with only its kind logged (a
 * message could carry request data).
 */
export function errorHandler(log: Logger) {
  return (err: unknown, _req: Request, res: Response, _next: NextFunction): void => {
    if (err instanceof ApiError) {
      if (err.retryAfterSeconds !== undefined)
        res.setHeader('retry-after', String(err.retryAfterSeconds));
      return void res.status(err.status).json({ error: err.code });
    }
    const e = err as { type?: string; status?: unknown; name?: string; code?: string };
    if (e.type === 'entity.too.large')
      return void res.status(413).json({ error: 'BODY_TOO_LARGE' });
    if (e.type === 'entity.parse.failed') return void res.status(400).json({ error: 'BAD_JSON' });
    if (typeof e.status === 'number' && e.status >= 400 && e.status < 500)
      return void res.status(e.status).json({ error: 'BAD_REQUEST' });
    log.error({ errorName: e.name, code: e.code }, 'request failed');
    res.status(500).json({ error: 'INTERNAL' });
  };
}

/** One line per request: route pattern, status and time — no address, no identifiers from the URL. */
export function requestLog(log: Logger) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const start = process.hrtime.bigint();
    res.on('finish', () => {
      const route = (req.route as { path?: string } | undefined)?.path ?? 'unmatched';
      log.info(
        {
          method: req.method,
          route,
          status: res.statusCode,
          ms: Number(process.hrtime.bigint() - start) / 1e6,
        },
        'request',
      );
    });
    next();
  };
}
