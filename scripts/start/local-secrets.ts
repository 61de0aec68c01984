import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { main as haCli } from '../../health-authority-cli/src/cli.js';
import { PKI_FILES, createDeploymentPki, writePki } from '../../deploy/pki/pki.js';

/** Paths of everything the local system needs, made once and kept in the data folder. */
export interface LocalSecrets {
  readonly pkiDir: string;
  readonly ca: string;
  readonly appCert: string;
  readonly appKey: string;
  readonly policeCert: string;
  readonly policeKey: string;
  readonly authorityKey: string;
  readonly authorityPub: string;
  readonly kekFile: string;
  readonly sessionPrivate: string;
  readonly sessionPublic: string;
  /** What was made this time (empty on a restart). */
  readonly made: string[];
}

const quiet = { stdout: () => undefined, stderr: () => undefined };

export async function ensureLocalSecrets(dataDir: string): Promise<LocalSecrets> {
  const made: string[] = [];
  const pkiDir = join(dataDir, 'pki');
  if (!existsSync(join(pkiDir, PKI_FILES.ca.cert))) {
    await writePki(pkiDir, await createDeploymentPki({ environment: 'local' }));
    made.push('development PKI (CA, both backends)');
  }
  const haDir = join(dataDir, 'health-authority');
  if (!existsSync(join(haDir, 'authority.key'))) {
    // The health authority's own command makes its signing key, as it would in production.
    const code = await haCli(['keys', '--out', haDir], quiet);
    if (code !== 0) throw new Error(`making the health authority's key failed (exit ${code})`);
    made.push("health authority's signing key");
  }
  const secretsDir = join(dataDir, 'secrets');
  mkdirSync(secretsDir, { recursive: true, mode: 0o700 });
  const kekFile = join(secretsDir, 'app-kek.b64');
  if (!existsSync(kekFile)) {
    writeFileSync(kekFile, randomBytes(32).toString('base64'), { mode: 0o600 });
    made.push('key-encryption key');
  }
  const sessionPrivate = join(secretsDir, 'police-session.key');
  const sessionPublic = join(secretsDir, 'police-session.pub');
  if (!existsSync(sessionPrivate)) {
    // Kept, so officers stay signed in across a restart.
    const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    writeFileSync(sessionPrivate, pair.privateKey.export({ type: 'pkcs8', format: 'pem' }), {
      mode: 0o600,
    });
    writeFileSync(sessionPublic, pair.publicKey.export({ type: 'spki', format: 'pem' }));
    made.push('police session signing key');
  }
  return {
    pkiDir,
    ca: join(pkiDir, PKI_FILES.ca.cert),
    appCert: join(pkiDir, PKI_FILES.appBackend.cert),
    appKey: join(pkiDir, PKI_FILES.appBackend.key),
    policeCert: join(pkiDir, PKI_FILES.policeBackend.cert),
    policeKey: join(pkiDir, PKI_FILES.policeBackend.key),
    authorityKey: join(haDir, 'authority.key'),
    authorityPub: join(haDir, 'authority.pub'),
    kekFile,
    sessionPrivate,
    sessionPublic,
    made,
  };
}

export const readText = (path: string): string => readFileSync(path, 'utf8');
