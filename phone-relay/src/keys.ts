/** SK_T_PAST from its file, and the random key a dummy-mode install keeps instead. */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, renameSync } from 'node:fs';
import { writeFileAtomic } from './atomic-file.js';
import { RelayError } from './errors.js';

export const KEY_LENGTH = 32;

/**
 * Read SK_T_PAST: a file holding 64 hex digits (surrounding whitespace allowed) or exactly 32
 * raw bytes. Errors name the file, never its content.
 */
export function readKeyFile(path: string): Uint8Array {
  let raw: Buffer;
  try {
    raw = readFileSync(path);
  } catch (err) {
    throw new RelayError(
      'BAD_KEY_FILE',
      `cannot read the key file ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
  const text = raw.toString('latin1').trim();
  if (/^[0-9a-fA-F]{64}$/.test(text)) return new Uint8Array(Buffer.from(text, 'hex'));
  if (raw.length === KEY_LENGTH) return new Uint8Array(raw);
  throw new RelayError(
    'BAD_KEY_FILE',
    `the key file ${path} must hold SK_T_PAST as 64 hex digits or 32 raw bytes`,
  );
}

/** What a dummy-mode install keeps: its own random key and the start of its modelled backlog. */
export interface DummyState {
  readonly key: Uint8Array;
  /** Since when the modelled beacon has "made tokens" that no 202 has taken yet (ms). */
  pendingSince: number;
}

/**
 * Load the dummy state, or make it on first run: a random key kept by this install for good (a
 * new key at every start would itself be a signal). An unusable file is moved aside.
 */
export function loadDummyState(path: string, now: number): { state: DummyState; problem?: string } {
  if (existsSync(path)) {
    try {
      const parsed = JSON.parse(readFileSync(path, 'utf8')) as {
        version?: unknown;
        key?: unknown;
        pendingSince?: unknown;
      };
      if (
        parsed.version === 1 &&
        typeof parsed.key === 'string' &&
        /^[0-9a-f]{64}$/.test(parsed.key) &&
        typeof parsed.pendingSince === 'number' &&
        Number.isFinite(parsed.pendingSince)
      )
        return {
          state: {
            key: new Uint8Array(Buffer.from(parsed.key, 'hex')),
            pendingSince: parsed.pendingSince,
          },
        };
    } catch {
      // Fall through: unusable.
    }
    const aside = `${path}.corrupt-${now}`;
    renameSync(path, aside);
    const state = { key: new Uint8Array(randomBytes(KEY_LENGTH)), pendingSince: now };
    saveDummyState(path, state);
    return {
      state,
      problem: `the dummy state file was unusable; moved aside to ${aside}, made a new one`,
    };
  }
  const state = { key: new Uint8Array(randomBytes(KEY_LENGTH)), pendingSince: now };
  saveDummyState(path, state);
  return { state };
}

export function saveDummyState(path: string, state: DummyState): void {
  const text = JSON.stringify({
    version: 1,
    key: Buffer.from(state.key).toString('hex'),
    pendingSince: state.pendingSince,
  });
  writeFileAtomic(path, Buffer.from(text), { mode: 0o600 });
}
