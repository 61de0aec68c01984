/** The PKI on disk: one directory per environment, private keys readable by their owner only. */
import { X509Certificate, createPrivateKey, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { IssuedCert } from './certs.js';
import {
  BACKENDS,
  type Backend,
  type BackendHosts,
  type DeploymentPki,
  IDENTITIES,
  LEAF_VALID_DAYS,
  LOOPBACK_DNS,
  LOOPBACK_IPS,
  issueBackend,
} from './deployment.js';
import { describeCertificate } from './describe.js';
import { checkPkiFolder } from './environment.js';
import { checkValidDays } from './validate.js';

/** File names inside a PKI directory, per part of the PKI. */
export const PKI_FILES: Readonly<Record<keyof DeploymentPki, { cert: string; key: string }>> = {
  ca: { cert: 'ca.crt', key: 'ca.key' },
  appBackend: { cert: 'app-backend.crt', key: 'app-backend.key' },
  policeBackend: { cert: 'police-backend.crt', key: 'police-backend.key' },
};
const PARTS: readonly (keyof DeploymentPki)[] = ['ca', 'appBackend', 'policeBackend'];

export interface RenewOptions {
  readonly validDays?: number | undefined;
  /** Extra host names per backend; a backend left out keeps the extra names it has now. */
  readonly hosts?: BackendHosts | undefined;
  /** The environment `dir` must belong to; renewal is refused for any other CA. */
  readonly environment?: string | undefined;
  readonly now?: Date | undefined;
}

export async function writePki(dir: string, pki: DeploymentPki): Promise<void> {
  await writeParts(dir, pki, PARTS);
}

export async function readPki(dir: string): Promise<DeploymentPki> {
  return {
    ca: await readIssued(dir, 'ca'),
    appBackend: await readIssued(dir, 'appBackend'),
    policeBackend: await readIssued(dir, 'policeBackend'),
  };
}

/** New certificates for both backends from the CA already in `dir`, which stays as it is. */
export async function renewLeaves(dir: string, options: RenewOptions = {}): Promise<DeploymentPki> {
  const validDays = checkValidDays(options.validDays ?? LEAF_VALID_DAYS, 'certificate validity');
  const now = options.now ?? new Date();
  const ca = await readIssued(
    dir,
    'ca',
    'renewal needs the CA: run "init" first, or bring ca.key back from offline storage',
  );
  await checkPkiFolder(
    dir,
    { ca: PKI_FILES.ca.cert, leaves: BACKENDS.map((b) => PKI_FILES[b].cert) },
    options.environment,
  );
  const [appHosts, policeHosts] = await Promise.all(
    BACKENDS.map(async (b) => options.hosts?.[b] ?? (await currentExtraHosts(dir, b))),
  );
  const pki: DeploymentPki = {
    ca,
    appBackend: await issueBackend(ca, 'appBackend', appHosts ?? [], validDays, now),
    policeBackend: await issueBackend(ca, 'policeBackend', policeHosts ?? [], validDays, now),
  };
  await writeParts(dir, pki, BACKENDS);
  return pki;
}

/** The host names a backend's current certificate has beyond the defaults (none if unreadable). */
async function currentExtraHosts(dir: string, backend: Backend): Promise<string[]> {
  const defaults = new Set([IDENTITIES[backend], ...LOOPBACK_DNS, ...LOOPBACK_IPS]);
  try {
    const summary = describeCertificate(await readFile(join(dir, PKI_FILES[backend].cert), 'utf8'));
    return [...summary.dnsNames, ...summary.ipAddresses].filter((h) => !defaults.has(h));
  } catch {
    return [];
  }
}

async function writeParts(
  dir: string,
  pki: DeploymentPki,
  parts: readonly (keyof DeploymentPki)[],
): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  for (const part of parts) {
    await writeAtomically(join(dir, PKI_FILES[part].cert), pki[part].cert, 0o644);
    await writeAtomically(join(dir, PKI_FILES[part].key), pki[part].key, 0o600);
  }
}

// A fresh file renamed into place: readers never see half a key, and an old file's looser mode never survives.
async function writeAtomically(path: string, data: string, mode: number): Promise<void> {
  const temporary = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeFile(temporary, data, { mode, flag: 'wx' });
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}

async function readIssued(
  dir: string,
  part: keyof DeploymentPki,
  hint?: string,
): Promise<IssuedCert> {
  const files = PKI_FILES[part];
  const cert = await readPem(dir, files.cert, hint);
  const key = await readPem(dir, files.key, hint);
  try {
    new X509Certificate(cert);
  } catch (error) {
    throw new Error(`${join(dir, files.cert)} is not a PEM certificate (${String(error)})`, {
      cause: error,
    });
  }
  try {
    createPrivateKey(key);
  } catch (error) {
    throw new Error(`${join(dir, files.key)} is not a PEM private key (${String(error)})`, {
      cause: error,
    });
  }
  return { cert, key };
}

async function readPem(dir: string, name: string, hint?: string): Promise<string> {
  try {
    return await readFile(join(dir, name), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new Error(`${join(dir, name)} not found${hint ? `: ${hint}` : ''}`, { cause: error });
    }
    throw error;
  }
}
