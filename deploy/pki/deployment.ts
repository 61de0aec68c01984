/** One environment's PKI: its CA and the two backends' certificates. */
import { CLOCK_SKEW_MS, type IssuedCert, createCa, issueCertificate } from './certs.js';
import { caCommonName } from './environment.js';
import { checkEnvironment, checkValidDays, splitHosts, unique } from './validate.js';

export interface DeploymentPki {
  readonly ca: IssuedCert;
  readonly appBackend: IssuedCert;
  readonly policeBackend: IssuedCert;
}

export type Backend = 'appBackend' | 'policeBackend';

/** Extra host names (DNS names or IP addresses) a backend is reached by, besides the defaults. */
export interface BackendHosts {
  readonly appBackend?: readonly string[] | undefined;
  readonly policeBackend?: readonly string[] | undefined;
}

export interface DeploymentOptions {
  readonly environment: string;
  readonly hosts?: BackendHosts | undefined;
  /** Leaf validity; 397 days by default. */
  readonly validDays?: number | undefined;
  /** CA validity; 10 years by default. */
  readonly caValidDays?: number | undefined;
  readonly now?: Date | undefined;
}

/** The certificate common names: each backend checks its peer's CN to know who is calling. */
export const IDENTITIES: Readonly<Record<Backend, string>> = {
  appBackend: 'app-backend',
  policeBackend: 'police-backend',
};
export const BACKENDS: readonly Backend[] = ['appBackend', 'policeBackend'];
// 397 days is the longest leaf lifetime TLS clients accept from public CAs; we keep to the same habit.
export const LEAF_VALID_DAYS = 397;
export const CA_VALID_DAYS = 3650;
// Every backend can be reached on its own machine, for health checks and single-host deployments.
export const LOOPBACK_DNS = ['localhost'];
export const LOOPBACK_IPS = ['127.0.0.1', '::1'];

export async function createDeploymentPki(options: DeploymentOptions): Promise<DeploymentPki> {
  const environment = checkEnvironment(options.environment);
  const validDays = checkValidDays(options.validDays ?? LEAF_VALID_DAYS, 'certificate validity');
  const caValidDays = checkValidDays(options.caValidDays ?? CA_VALID_DAYS, 'CA validity');
  const now = options.now ?? new Date();
  const ca = await createCa({
    commonName: caCommonName(environment),
    validDays: caValidDays,
    now,
  });
  return {
    ca,
    appBackend: await issueBackend(
      ca,
      'appBackend',
      options.hosts?.appBackend ?? [],
      validDays,
      now,
    ),
    policeBackend: await issueBackend(
      ca,
      'policeBackend',
      options.hosts?.policeBackend ?? [],
      validDays,
      now,
    ),
  };
}

/** A backend's certificate: server and client both, since each backend calls the other. */
export async function issueBackend(
  ca: IssuedCert,
  backend: Backend,
  extraHosts: readonly string[],
  validDays: number,
  now: Date,
): Promise<IssuedCert> {
  const extra = splitHosts(extraHosts);
  return issueCertificate(ca, {
    commonName: IDENTITIES[backend],
    dnsNames: unique([IDENTITIES[backend], ...LOOPBACK_DNS, ...extra.dnsNames]),
    ipAddresses: unique([...LOOPBACK_IPS, ...extra.ipAddresses]),
    usages: ['server', 'client'],
    validDays,
    notBefore: new Date(now.getTime() - CLOCK_SKEW_MS),
  });
}
