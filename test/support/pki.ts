import {
  type DeploymentPki,
  type IssuedCert,
  createCa,
  createDeploymentPki,
  issueCertificate,
} from '../../deploy/pki/pki.js';

let cached: Promise<DeploymentPki> | undefined;

/** One deployment PKI per test run, made by the project's own PKI code (never hand-copied certificates). */
export function testPki(): Promise<DeploymentPki> {
  cached ??= createDeploymentPki({ environment: 'test' });
  return cached;
}

/** A CA that is not ours, and a client certificate from it claiming to be the police backend. */
export async function foreignClient(): Promise<IssuedCert & { ca: string }> {
  const ca = await createCa({ commonName: 'Impostor CA', validDays: 30 });
  const leaf = await issueCertificate(ca, {
    commonName: 'police-backend',
    usages: ['client', 'server'],
    // Shorter than the CA: both count from "now", and a second may pass between them.
    validDays: 29,
    dnsNames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
  });
  return { ...leaf, ca: ca.cert };
}

/** A certificate from our CA that expired long ago. */
export async function expiredClient(commonName = 'police-backend'): Promise<IssuedCert> {
  const pki = await testPki();
  return issueCertificate(pki.ca, {
    commonName,
    usages: ['client'],
    validDays: 1,
    notBefore: new Date(Date.now() - 30 * 86_400_000),
  });
}
