/**
 * Which environment a PKI folder belongs to, read from its CA's name ("SmartBeacon <env> CA").
 * Each environment has a CA of its own: nothing is issued into a folder whose CA, or whose
 * existing certificates, belong to another environment.
 */
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { x509 } from './x509.js';

const CA_NAME = /^SmartBeacon ([a-z0-9-]{1,32}) CA$/;

/** The folder holds another environment's CA or certificates: refused, never repaired. */
export class PkiEnvironmentError extends Error {
  override readonly name = 'PkiEnvironmentError';
}

export function caCommonName(environment: string): string {
  return `SmartBeacon ${environment} CA`;
}

/** The environment a CA certificate was made for, or undefined when its name is not ours. */
export function environmentOfCa(caPem: string): string | undefined {
  const cn = new x509.X509Certificate(caPem).subjectName.getField('CN')[0];
  return cn === undefined ? undefined : CA_NAME.exec(cn)?.[1];
}

/**
 * Reads `dir`'s CA and returns its environment. Refuses when it is not `expected` (if given), and
 * when a backend certificate already in `dir` was signed by some other CA: both mean the folder
 * mixes environments (e.g. staging's CA copied over production's folder).
 */
export async function checkPkiFolder(
  dir: string,
  files: { readonly ca: string; readonly leaves: readonly string[] },
  expected?: string,
): Promise<string> {
  const caPem = await readFile(join(dir, files.ca), 'utf8');
  const environment = environmentOfCa(caPem);
  if (environment === undefined) {
    throw new PkiEnvironmentError(
      `${join(dir, files.ca)} is not a SmartBeacon environment CA (its name is not "SmartBeacon <env> CA")`,
    );
  }
  if (expected !== undefined && environment !== expected) {
    throw new PkiEnvironmentError(
      `${dir} holds the ${environment} CA, not ${expected}'s: every environment has its own CA and folder`,
    );
  }
  const ca = new X509Certificate(caPem);
  for (const leaf of files.leaves) {
    let pem: string;
    try {
      pem = await readFile(join(dir, leaf), 'utf8');
    } catch {
      continue; // A missing certificate is simply issued anew.
    }
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(pem);
    } catch {
      continue; // Unreadable: replaced by the renewal, nothing to compare.
    }
    if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) {
      throw new PkiEnvironmentError(
        `${join(dir, leaf)} was not signed by this folder's CA (${caCommonName(environment)}; it names "${cert.issuer}"): the folder mixes environments, so nothing is issued into it`,
      );
    }
  }
  return environment;
}
