import { hash } from 'node:crypto';

// The presence request (relay → app backend) is one fixed size for everyone (seed 000): real, dummy or empty.
export const PRESENCE_VERSION = 1;
export const MAX_TOKENS_PER_REQUEST = 64;
export const TOKEN_SLOT = 64;
/** version ‖ count ‖ SK_T_PAST (32) ‖ 64 token slots of 64 bytes, unused slots zero. */
export const PRESENCE_BODY_LENGTH = 2 + 32 + MAX_TOKENS_PER_REQUEST * TOKEN_SLOT;
/** The answer: fixed size and, for now, fixed content (the alert lifecycle puts a sealed status here). */
export const PRESENCE_RESPONSE_LENGTH = 64;
export const PRESENCE_RESPONSE = Buffer.alloc(PRESENCE_RESPONSE_LENGTH);

export type PresenceShapeError = 'BAD_LENGTH' | 'BAD_VERSION' | 'BAD_COUNT';

export interface PresenceRequest {
  /** SHA-256(SK_T_PAST), hex: the only form in which the key is kept, even in memory queues. */
  readonly keyHash: string;
  readonly tokens: readonly Uint8Array[];
  readonly receivedAt: number;
}

/** One call, no Hash object: a third of createHash's cost on every presence request (Node ≥ 20.12). */
export function hashKey(skTPast: Uint8Array): string {
  return hash('sha256', skTPast, 'hex');
}

/** Check the shape only; nothing here depends on whether the key is known. */
export function parsePresenceBody(
  body: Buffer,
  receivedAt: number,
): PresenceRequest | PresenceShapeError {
  if (body.length !== PRESENCE_BODY_LENGTH) return 'BAD_LENGTH';
  if (body[0] !== PRESENCE_VERSION) return 'BAD_VERSION';
  const count = body[1] as number;
  if (count > MAX_TOKENS_PER_REQUEST) return 'BAD_COUNT';
  const tokens: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const at = 34 + i * TOKEN_SLOT;
    tokens.push(new Uint8Array(body.subarray(at, at + TOKEN_SLOT)));
  }
  return { keyHash: hashKey(body.subarray(2, 34)), tokens, receivedAt };
}

/** Build a request body (relays and tests). */
export function encodePresenceBody(skTPast: Uint8Array, tokens: readonly Uint8Array[]): Buffer {
  if (skTPast.length !== 32) throw new RangeError('SK_T_PAST must be 32 bytes');
  if (tokens.length > MAX_TOKENS_PER_REQUEST)
    throw new RangeError(`at most ${MAX_TOKENS_PER_REQUEST} tokens per request`);
  const body = Buffer.alloc(PRESENCE_BODY_LENGTH);
  body[0] = PRESENCE_VERSION;
  body[1] = tokens.length;
  body.set(skTPast, 2);
  tokens.forEach((t, i) => {
    if (t.length !== TOKEN_SLOT) throw new RangeError('each token must be 64 bytes');
    body.set(t, 34 + i * TOKEN_SLOT);
  });
  return body;
}
