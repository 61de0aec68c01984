/**
 * The deployment PKI: a CA per environment and the certificates the two backends use for HTTPS
 * and for mutual TLS with each other. `cli.ts` is its command line.
 */
export {
  type IssuedCert,
  type Usage,
  type CaOptions,
  type LeafOptions,
  createCa,
  issueCertificate,
} from './certs.js';
export {
  type DeploymentPki,
  type DeploymentOptions,
  type Backend,
  type BackendHosts,
  IDENTITIES,
  LEAF_VALID_DAYS,
  CA_VALID_DAYS,
  createDeploymentPki,
} from './deployment.js';
export { type RenewOptions, PKI_FILES, writePki, readPki, renewLeaves } from './files.js';
export { type CertificateSummary, describeCertificate, formatSummary } from './describe.js';
export { PkiInputError, checkEnvironment } from './validate.js';
export {
  PkiEnvironmentError,
  caCommonName,
  checkPkiFolder,
  environmentOfCa,
} from './environment.js';
