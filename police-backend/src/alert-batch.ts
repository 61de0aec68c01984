import { ApiError, badRequest } from '../../backend-kit/errors.js';
import type { Logger } from '../../backend-kit/logger.js';
import { alertMessageSchema } from './alerts.js';
import { type AlertIntake, overloaded } from './intake.js';

/** Alerts in one batch post: a burst goes out in a few requests, each still a short transaction. */
export const MAX_ALERTS_PER_BATCH = 256;
/** Bytes of one batch post: room for the most alerts at several times their usual ~400 bytes. */
export const MAX_BATCH_BYTES = 1024 * 1024;

/** One alert's outcome, at its index in the batch. */
export type BatchItemResult =
  | { readonly ok: true; readonly duplicate: boolean }
  | { readonly ok: false; readonly error: string };

/**
 * Store a batch of alert messages (`{"alerts": [...]}`) through the intake, each on its own: a
 * malformed one is refused as `BAD_ALERT`, one the intake refuses gets the code it would answer
 * alone (`INTERNAL` if storing failed), and the others are stored as if posted alone. Throws
 * `BAD_BATCH` (nothing stored) when the body is not such a list, `OVERLOADED` (nothing stored)
 * when the intake has no room for all of it. Results keep the batch's order;
 * so does storing (the intake keeps arrival order).
 */
export async function receiveBatch(
  intake: AlertIntake,
  body: unknown,
  log: Logger,
): Promise<BatchItemResult[]> {
  const alerts = (body as { alerts?: unknown } | null)?.alerts;
  if (
    typeof body !== 'object' ||
    body === null ||
    Array.isArray(body) ||
    Object.keys(body).length !== 1 ||
    !Array.isArray(alerts) ||
    alerts.length === 0 ||
    alerts.length > MAX_ALERTS_PER_BATCH
  )
    throw badRequest('BAD_BATCH');
  // Admitted whole or refused whole (503 OVERLOADED): a sender never has to sort out a half-taken batch.
  if (!intake.hasRoom(alerts.length)) throw overloaded();
  let failed = 0;
  return Promise.all(
    alerts.map(async (item: unknown): Promise<BatchItemResult> => {
      const parsed = alertMessageSchema.safeParse(item);
      if (!parsed.success) return { ok: false, error: 'BAD_ALERT' };
      try {
        const changed = await intake.receive(parsed.data);
        return { ok: true, duplicate: changed.length === 0 };
      } catch (err) {
        if (err instanceof ApiError) return { ok: false, error: err.code };
        // One line per batch: the same fault usually fails every alert in it.
        if (failed++ === 0) {
          const e = err as { name?: string; code?: string };
          log.error({ errorName: e?.name, code: e?.code }, 'alert in a batch not stored');
        }
        return { ok: false, error: 'INTERNAL' };
      }
    }),
  );
}
