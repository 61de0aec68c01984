/**
 * The secrets folder a deployment mounts (Compose secrets, systemd credentials): one flat folder
 * per environment, outside the repository, with the files each service reads at run time. The PKI
 * parts are copied from a PKI folder (never `ca.key`); the KEK, the database passwords and the
 * officers' session keys are generated once and then kept, because replacing them breaks data.
 */
import { X509Certificate, createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { chmod, chown, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { IDENTITIES, PKI_FILES, checkPkiFolder, environmentOfCa } from '../pki/pki.js';
import { PkiEnvironmentError } from '../pki/environment.js';

/** The files in a secrets folder, by what they are. Compose and the systemd units name these. */
export const SECRET_FILES = {
  ca: 'ca.crt',
  appCert: 'app-backend.crt',
  appKey: 'app-backend.key',
  policeCert: 'police-backend.crt',
  policeKey: 'police-backend.key',
  haPublicKey: 'ha-authority.pub',
  appKek: 'app-kek',
  appDbPassword: 'app-db-password',
  policeDbPassword: 'police-db-password',
  policeSessionKey: 'police-session.key',
  policeSessionPublicKey: 'police-session.pub',
} as const;
export type SecretName = keyof typeof SECRET_FILES;

/** The user IDs the container images run as, and the Debian postgres image's group. */
export const CONTAINER_IDS = { appBackend: 10001, policeBackend: 10002, postgresGroup: 999 };

/** Who may read each file inside the containers (bind-mounted secrets keep the host's owner and mode). */
const ACCESS: Readonly<Record<SecretName, { mode: number; uid?: number; gid?: number }>> = {
  ca: { mode: 0o644 },
  appCert: { mode: 0o644 },
  appKey: { mode: 0o400, uid: CONTAINER_IDS.appBackend },
  policeCert: { mode: 0o644 },
  policeKey: { mode: 0o400, uid: CONTAINER_IDS.policeBackend },
  haPublicKey: { mode: 0o644 },
  appKek: { mode: 0o400, uid: CONTAINER_IDS.appBackend },
  // Read by the backend (owner) and by its PostgreSQL container at first start (group).
  appDbPassword: {
    mode: 0o440,
    uid: CONTAINER_IDS.appBackend,
    gid: CONTAINER_IDS.postgresGroup,
  },
  policeDbPassword: {
    mode: 0o440,
    uid: CONTAINER_IDS.policeBackend,
    gid: CONTAINER_IDS.postgresGroup,
  },
  policeSessionKey: { mode: 0o400, uid: CONTAINER_IDS.policeBackend },
  policeSessionPublicKey: { mode: 0o644 },
};

export interface SecretsOptions {
  /** The secrets folder to fill (created 0700). */
  readonly out: string;
  /** A PKI folder made by `npm run pki -- init`; only the CA certificate and the leaves are copied. */
  readonly pki: string;
  /** The environment both folders must belong to. */
  readonly environment: string;
  /** The health authority's ES256 public key (`authority.pub` from `npm run ha -- keys`). */
  readonly haPublicKey: string;
  /** Give the files to the containers' users (needs root); false for systemd credentials. */
  readonly chown: boolean;
}

export type SecretStatus = 'copied' | 'created' | 'kept';

/** Fill `out`; returns what happened to each file. Nothing that already exists is regenerated. */
export async function prepareSecrets(
  options: SecretsOptions,
): Promise<Record<SecretName, SecretStatus>> {
  const { out, pki, environment } = options;
  await checkPkiFolder(
    pki,
    {
      ca: PKI_FILES.ca.cert,
      leaves: [PKI_FILES.appBackend.cert, PKI_FILES.policeBackend.cert],
    },
    environment,
  );
  const existingCa = await readOptional(join(out, SECRET_FILES.ca));
  if (existingCa !== undefined && environmentOfCa(existingCa) !== environment) {
    throw new PkiEnvironmentError(
      `${out} holds another environment's CA (${environmentOfCa(existingCa) ?? 'unknown'}): one secrets folder per environment`,
    );
  }
  await mkdir(out, { recursive: true, mode: 0o700 });
  await chmod(out, 0o700);

  const status = {} as Record<SecretName, SecretStatus>;
  const put = async (name: SecretName, data: string, how: SecretStatus) => {
    await writeAtomically(join(out, SECRET_FILES[name]), data, ACCESS[name], options.chown);
    status[name] = how;
  };
  const keep = async (name: SecretName) => {
    const access = ACCESS[name];
    const path = join(out, SECRET_FILES[name]);
    await chmod(path, access.mode);
    if (options.chown) await chown(path, access.uid ?? 0, access.gid ?? 0);
    status[name] = 'kept';
  };

  await put('ca', await readFile(join(pki, PKI_FILES.ca.cert), 'utf8'), 'copied');
  for (const [backend, cert, key] of [
    ['appBackend', 'appCert', 'appKey'],
    ['policeBackend', 'policeCert', 'policeKey'],
  ] as const) {
    const pem = await readFile(join(pki, PKI_FILES[backend].cert), 'utf8');
    checkLeaf(pem, IDENTITIES[backend]);
    await put(cert, pem, 'copied');
    await put(key, await readFile(join(pki, PKI_FILES[backend].key), 'utf8'), 'copied');
  }
  await put('haPublicKey', es256PublicKey(await readFile(options.haPublicKey, 'utf8')), 'copied');

  const kek = await readOptional(join(out, SECRET_FILES.appKek));
  if (kek === undefined) await put('appKek', `${randomBytes(32).toString('base64')}\n`, 'created');
  else if (Buffer.from(kek.trim(), 'base64').length !== 32)
    throw new Error(`${join(out, SECRET_FILES.appKek)} is not 32 bytes in base64: fix it by hand`);
  else await keep('appKek');

  for (const name of ['appDbPassword', 'policeDbPassword'] as const) {
    // Hex: safe in a connection string and in every shell, with 256 bits of entropy.
    if ((await readOptional(join(out, SECRET_FILES[name]))) === undefined)
      await put(name, `${randomBytes(32).toString('hex')}\n`, 'created');
    else await keep(name);
  }

  const sessionKey = await readOptional(join(out, SECRET_FILES.policeSessionKey));
  const sessionPublic = await readOptional(join(out, SECRET_FILES.policeSessionPublicKey));
  if (sessionKey === undefined && sessionPublic === undefined) {
    const pair = generateKeyPairSync('ec', {
      namedCurve: 'P-256',
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
      publicKeyEncoding: { type: 'spki', format: 'pem' },
    });
    await put('policeSessionKey', pair.privateKey, 'created');
    await put('policeSessionPublicKey', pair.publicKey, 'created');
  } else if (sessionKey === undefined || sessionPublic === undefined) {
    throw new Error(
      `${out} has only half of the session key pair: remove the other half to make a new pair`,
    );
  } else {
    await keep('policeSessionKey');
    await keep('policeSessionPublicKey');
  }
  return status;
}

function checkLeaf(pem: string, identity: string): void {
  const cert = new X509Certificate(pem);
  if (!cert.subject.split('\n').includes(`CN=${identity}`))
    throw new Error(`expected a certificate for ${identity}, got "${cert.subject}"`);
  if (new Date(cert.validTo) < new Date())
    throw new Error(`the ${identity} certificate expired on ${cert.validTo}: renew it first`);
}

/** The health authority signs ES256 (P-256); anything else would fail every request later. */
function es256PublicKey(pem: string): string {
  let key;
  try {
    key = createPublicKey(pem);
  } catch (error) {
    throw new Error(`the health authority's public key is not a PEM public key`, { cause: error });
  }
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1')
    throw new Error(`the health authority's public key must be ECDSA P-256 (ES256)`);
  return key.export({ type: 'spki', format: 'pem' }).toString();
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

// Written beside and renamed into place, with its final mode from the start: never half a key, never a looser mode.
async function writeAtomically(
  path: string,
  data: string,
  access: { mode: number; uid?: number; gid?: number },
  owners: boolean,
): Promise<void> {
  const temporary = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeFile(temporary, data, { mode: 0o600, flag: 'wx' });
    if (owners) await chown(temporary, access.uid ?? 0, access.gid ?? 0);
    await chmod(temporary, access.mode);
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}

/** The mode bits a secrets file should have (for checks and the README's table). */
export function expectedMode(name: SecretName): number {
  return ACCESS[name].mode;
}
