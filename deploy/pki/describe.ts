/** What a certificate says, read back for `show`, renewal and tests. */
import { checkIpAddress } from './validate.js';
import { x509 } from './x509.js';

export interface CertificateSummary {
  readonly subject: string;
  readonly issuer: string;
  readonly serialNumber: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly isCa: boolean;
  readonly dnsNames: readonly string[];
  readonly ipAddresses: readonly string[];
  readonly extendedKeyUsages: readonly string[];
}

const USAGE_NAMES: Readonly<Record<string, string>> = {
  [x509.ExtendedKeyUsage.serverAuth]: 'serverAuth',
  [x509.ExtendedKeyUsage.clientAuth]: 'clientAuth',
};

export function describeCertificate(pem: string): CertificateSummary {
  const cert = new x509.X509Certificate(pem);
  const names = cert.getExtension(x509.SubjectAlternativeNameExtension)?.names.toJSON() ?? [];
  const usages = cert.getExtension(x509.ExtendedKeyUsageExtension)?.usages ?? [];
  return {
    subject: cert.subject,
    issuer: cert.issuer,
    serialNumber: cert.serialNumber,
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
    isCa: cert.getExtension(x509.BasicConstraintsExtension)?.ca ?? false,
    dnsNames: names.filter((n) => n.type === 'dns').map((n) => n.value),
    ipAddresses: names.filter((n) => n.type === 'ip').map((n) => checkIpAddress(n.value)),
    extendedKeyUsages: usages.map((u) => USAGE_NAMES[String(u)] ?? String(u)),
  };
}

/** Indented lines for a terminal, with how long the certificate has left. */
export function formatSummary(summary: CertificateSummary, now = new Date()): string[] {
  const daysLeft = Math.floor((summary.notAfter.getTime() - now.getTime()) / 86_400_000);
  const status =
    now < summary.notBefore ? 'NOT YET VALID' : daysLeft < 0 ? 'EXPIRED' : `${daysLeft} days left`;
  const sans = [
    ...summary.dnsNames.map((n) => `DNS:${n}`),
    ...summary.ipAddresses.map((ip) => `IP:${ip}`),
  ];
  return [
    `  subject:  ${summary.subject}`,
    `  issuer:   ${summary.issuer}`,
    `  serial:   ${summary.serialNumber}`,
    `  valid:    ${summary.notBefore.toISOString()} to ${summary.notAfter.toISOString()} (${status})`,
    `  CA:       ${summary.isCa ? 'yes' : 'no'}`,
    `  usages:   ${summary.extendedKeyUsages.join(', ') || '-'}`,
    `  SANs:     ${sans.join(', ') || '-'}`,
  ];
}
