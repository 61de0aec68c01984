import { createCipheriv, createDecipheriv, createHash } from 'node:crypto';

/** Which parts of require("crypto") a board has (espruino-facts.md §1–2). */
export interface CryptoFeatures {
  readonly aes: boolean;
  readonly sha256: boolean;
}

function bytes(data: unknown): Uint8Array {
  if (typeof data === 'string') return Uint8Array.from(data, (c) => c.charCodeAt(0) & 0xff);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data))
    return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (Array.isArray(data)) return Uint8Array.from(data as number[]);
  throw new Error('Expecting a String, Array or ArrayBuffer');
}

const arrayBuffer = (b: Buffer): ArrayBuffer =>
  b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;

/** AES as Espruino does it: no padding (length must be a multiple of 16), ArrayBuffer out, IV default zero. */
function aes(direction: 'encrypt' | 'decrypt') {
  return (msg: unknown, key: unknown, options?: { iv?: unknown; mode?: string }): ArrayBuffer => {
    const k = bytes(key);
    if (![16, 24, 32].includes(k.length)) throw new Error('Invalid key length');
    const mode = (options?.mode ?? 'CBC').toUpperCase();
    if (mode !== 'CBC' && mode !== 'ECB') throw new Error('Feature unavailable');
    let m = bytes(msg);
    if (mode === 'ECB') m = m.subarray(0, m.length - (m.length % 16));
    else if (m.length % 16 !== 0) throw new Error('Invalid input length');
    const iv = options?.iv === undefined ? new Uint8Array(16) : bytes(options.iv);
    const name = `aes-${k.length * 8}-${mode.toLowerCase()}`;
    const c =
      direction === 'encrypt'
        ? createCipheriv(name, k, mode === 'ECB' ? null : iv)
        : createDecipheriv(name, k, mode === 'ECB' ? null : iv);
    c.setAutoPadding(false);
    return arrayBuffer(Buffer.concat([c.update(m), c.final()]));
  };
}

/** The object require("crypto") returns on a board with these features. */
export function cryptoModule(features: CryptoFeatures): Record<string, unknown> {
  const mod: Record<string, unknown> = {
    SHA1: (m: unknown) => arrayBuffer(createHash('sha1').update(bytes(m)).digest()),
  };
  if (features.sha256)
    mod.SHA256 = (m: unknown) => arrayBuffer(createHash('sha256').update(bytes(m)).digest());
  if (features.aes) mod.AES = { encrypt: aes('encrypt'), decrypt: aes('decrypt') };
  return mod;
}
