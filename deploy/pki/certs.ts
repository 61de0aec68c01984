/** Certificate issuing: the deployment CA and the leaves it signs (ECDSA P-256, SHA-256). */
import { createPrivateKey, createPublicKey, randomBytes } from 'node:crypto';
import {
  PkiInputError,
  checkCommonName,
  checkDnsName,
  checkIpAddress,
  checkValidDays,
  unique,
} from './validate.js';
import { type CryptoKey, type CryptoKeyPair, subtle, x509 } from './x509.js';

/** A certificate and its private key, both PEM (the key as unencrypted PKCS#8). */
export interface IssuedCert {
  readonly cert: string;
  readonly key: string;
}

export type Usage = 'server' | 'client';

export interface CaOptions {
  readonly commonName: string;
  readonly validDays: number;
  readonly now?: Date | undefined;
}

export interface LeafOptions {
  readonly commonName: string;
  readonly dnsNames?: readonly string[] | undefined;
  readonly ipAddresses?: readonly string[] | undefined;
  readonly usages: readonly Usage[];
  readonly validDays: number;
  readonly notBefore?: Date | undefined;
}

const EC_KEY = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGNATURE = { name: 'ECDSA', hash: 'SHA-256' } as const;
const DAY_MS = 86_400_000;
// Backdating absorbs clock skew between the machine that issues and the peers that verify.
export const CLOCK_SKEW_MS = 5 * 60_000;
const EXTENDED_USAGE: Record<Usage, x509.ExtendedKeyUsage> = {
  server: x509.ExtendedKeyUsage.serverAuth,
  client: x509.ExtendedKeyUsage.clientAuth,
};

/** A self-signed CA that may sign leaves only (path length 0). */
export async function createCa(options: CaOptions): Promise<IssuedCert> {
  const commonName = checkCommonName(options.commonName);
  const validDays = checkValidDays(options.validDays, 'CA validity');
  const notBefore = wholeSeconds((options.now ?? new Date()).getTime() - CLOCK_SKEW_MS);
  const keys = await generateKeys();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: [{ CN: [commonName] }],
    notBefore,
    notAfter: new Date(notBefore.getTime() + validDays * DAY_MS),
    keys,
    signingAlgorithm: SIGNATURE,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { cert: cert.toString('pem'), key: await exportPrivateKey(keys.privateKey) };
}

/** A leaf certificate for TLS, signed by `ca`. */
export async function issueCertificate(ca: IssuedCert, options: LeafOptions): Promise<IssuedCert> {
  const commonName = checkCommonName(options.commonName);
  const validDays = checkValidDays(options.validDays, 'certificate validity');
  const usages = unique(options.usages);
  if (usages.length === 0 || usages.some((u) => !Object.hasOwn(EXTENDED_USAGE, u))) {
    throw new PkiInputError(
      `usages must be one or both of "server", "client", got ${JSON.stringify(options.usages)}`,
    );
  }
  const names = [
    ...unique((options.dnsNames ?? []).map(checkDnsName)).map((value) => ({
      type: 'dns' as const,
      value,
    })),
    ...unique((options.ipAddresses ?? []).map(checkIpAddress)).map((value) => ({
      type: 'ip' as const,
      value,
    })),
  ];
  const notBefore = wholeSeconds(options.notBefore?.getTime() ?? Date.now() - CLOCK_SKEW_MS);
  const notAfter = new Date(notBefore.getTime() + validDays * DAY_MS);
  const issuer = await loadCa(ca);
  // Peers reject a chain once the CA expires, so a longer-lived leaf would only mislead.
  if (notAfter > issuer.cert.notAfter) {
    throw new PkiInputError(
      `certificate would expire ${notAfter.toISOString()}, after its CA (${issuer.cert.notAfter.toISOString()}): issue it for fewer days or create a new CA`,
    );
  }
  const keys = await generateKeys();
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension(usages.map((u) => EXTENDED_USAGE[u])),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    await authorityKeyIdentifier(issuer.cert),
  ];
  if (names.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(names));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: [{ CN: [commonName] }],
    // The CA's own encoded name, so issuer and subject match byte for byte in chain building.
    issuer: issuer.cert.subjectName,
    notBefore,
    notAfter,
    publicKey: keys.publicKey,
    signingKey: issuer.signingKey,
    signingAlgorithm: SIGNATURE,
    extensions,
  });
  return { cert: cert.toString('pem'), key: await exportPrivateKey(keys.privateKey) };
}

interface LoadedCa {
  readonly cert: x509.X509Certificate;
  readonly signingKey: CryptoKey;
}

/** Parses the CA and checks that it is one and that its key belongs to its certificate. */
async function loadCa(ca: IssuedCert): Promise<LoadedCa> {
  let cert: x509.X509Certificate;
  try {
    cert = new x509.X509Certificate(ca.cert);
  } catch (error) {
    throw new Error(`the CA certificate is not a valid PEM certificate (${String(error)})`, {
      cause: error,
    });
  }
  const constraints = cert.getExtension(x509.BasicConstraintsExtension);
  const keyUsage = cert.getExtension(x509.KeyUsagesExtension);
  if (!constraints?.ca || (keyUsage && !(keyUsage.usages & x509.KeyUsageFlags.keyCertSign))) {
    throw new Error(
      `the CA certificate (${cert.subject}) is not a CA: it may not sign certificates`,
    );
  }
  let privateKey;
  try {
    privateKey = createPrivateKey(ca.key);
  } catch (error) {
    throw new Error(`the CA private key is not a valid PEM key (${String(error)})`, {
      cause: error,
    });
  }
  if (
    privateKey.asymmetricKeyType !== 'ec' ||
    privateKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1'
  ) {
    throw new Error('the CA private key is not an ECDSA P-256 key');
  }
  const publicDer = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
  if (!publicDer.equals(Buffer.from(cert.publicKey.rawData))) {
    throw new Error(`the CA private key does not belong to the CA certificate (${cert.subject})`);
  }
  const pkcs8 = privateKey.export({ type: 'pkcs8', format: 'der' });
  const signingKey = await subtle.importKey('pkcs8', pkcs8, EC_KEY, false, ['sign']);
  return { cert, signingKey };
}

async function authorityKeyIdentifier(
  ca: x509.X509Certificate,
): Promise<x509.AuthorityKeyIdentifierExtension> {
  // Reuse the CA's own key identifier when it has one, so the two always match.
  const keyId = ca.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId;
  return keyId
    ? new x509.AuthorityKeyIdentifierExtension(keyId)
    : x509.AuthorityKeyIdentifierExtension.create(ca.publicKey);
}

async function generateKeys(): Promise<CryptoKeyPair> {
  return subtle.generateKey(EC_KEY, true, ['sign', 'verify']);
}

async function exportPrivateKey(key: CryptoKey): Promise<string> {
  const pkcs8 = await subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(pkcs8, 'PRIVATE KEY');
}

/** 16 random bytes, top bit clear (a positive INTEGER) and next bit set (always exactly 16 bytes). */
function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x40;
  return bytes.toString('hex');
}

// X.509 times have whole seconds; rounding here keeps the returned dates equal to the encoded ones.
function wholeSeconds(ms: number): Date {
  return new Date(Math.floor(ms / 1000) * 1000);
}
