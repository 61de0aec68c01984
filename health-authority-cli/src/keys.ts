/** The health authority's ES256 (P-256) key pair on disk. */
import { createHash, createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { usageError } from './errors.js';

export const KEY_FILES = { privateKey: 'authority.key', publicKey: 'authority.pub' } as const;

export interface WrittenKeys {
  readonly privateKeyPath: string;
  readonly publicKeyPath: string;
  /** SHA-256 of the public key (SPKI DER), hex: to compare with what the app backend has. */
  readonly fingerprint: string;
}

/** SHA-256 over the SPKI DER of a PEM public key, hex. */
export function publicKeyFingerprint(publicKeyPem: string): string {
  const der = createPublicKey(publicKeyPem).export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('hex');
}

/** Make a new key pair in `dir`; existing keys are replaced only with `force`. */
export async function writeAuthorityKeys(dir: string, force: boolean): Promise<WrittenKeys> {
  const privateKeyPath = join(dir, KEY_FILES.privateKey);
  const publicKeyPath = join(dir, KEY_FILES.publicKey);
  const existing = [privateKeyPath, publicKeyPath].filter((p) => existsSync(p));
  if (existing.length > 0 && !force)
    throw usageError(
      `${existing.join(' and ')} already exist${existing.length === 1 ? 's' : ''}: keeping them. A new key pair would stop the current one from working (the app backend trusts it, and sealed key files are made for it); use --force to replace it anyway`,
      'KEYS_EXIST',
    );
  const pair = generateKeyPairSync('ec', {
    namedCurve: 'P-256',
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (error) {
    throw usageError(
      `cannot create --out ${dir} (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
      'OUT_UNWRITABLE',
    );
  }
  await writeAtomically(privateKeyPath, pair.privateKey, 0o600);
  await writeAtomically(publicKeyPath, pair.publicKey, 0o644);
  return { privateKeyPath, publicKeyPath, fingerprint: publicKeyFingerprint(pair.publicKey) };
}

// A fresh file renamed into place: nobody reads half a key, and an old file's looser mode does not survive.
async function writeAtomically(path: string, data: string, mode: number): Promise<void> {
  const temporary = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeFile(temporary, data, { mode, flag: 'wx' });
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true });
    throw usageError(
      `cannot write ${path} (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
      'OUT_UNWRITABLE',
    );
  }
}
