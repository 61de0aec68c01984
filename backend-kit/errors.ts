/** An error a client may see: a stable code and an HTTP status, never internal detail. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message?: string,
    /** Sent as `Retry-After`: when a refused request may come again (overload). */
    readonly retryAfterSeconds?: number,
  ) {
    super(message ?? code);
  }
}

export const badRequest = (code: string) => new ApiError(400, code);
export const unauthorized = (code: string) => new ApiError(401, code);
export const forbidden = (code: string) => new ApiError(403, code);
export const notFound = (code: string) => new ApiError(404, code);
export const conflict = (code: string) => new ApiError(409, code);
/** Overloaded for now: nothing was done, the same request may come again after `retryAfterSeconds`. */
export const unavailable = (code: string, retryAfterSeconds: number) =>
  new ApiError(503, code, undefined, retryAfterSeconds);
