/** Input checks at the PKI's boundary: every error names the bad value and what is allowed. */
import { isIP } from 'node:net';

/** Bad input from the caller (CLI usage, options), as opposed to missing or broken files. */
export class PkiInputError extends Error {
  override readonly name = 'PkiInputError';
}

const ENVIRONMENT = /^[a-z0-9-]{1,32}$/;
const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
// Fifty years covers any CA; larger numbers are typos, and would run into X.509's year 9999.
const MAX_DAYS = 366 * 50;

export function checkEnvironment(environment: string): string {
  if (!ENVIRONMENT.test(environment)) {
    throw new PkiInputError(
      `invalid environment name ${JSON.stringify(environment)}: use 1-32 characters a-z, 0-9 or "-" (e.g. "prod", "staging")`,
    );
  }
  return environment;
}

export function checkValidDays(days: number, what: string): number {
  if (!Number.isInteger(days) || days < 1 || days > MAX_DAYS) {
    throw new PkiInputError(
      `${what} must be a whole number of days from 1 to ${MAX_DAYS}, got ${days}`,
    );
  }
  return days;
}

export function checkCommonName(commonName: string): string {
  // 64 is X.520's upper bound for a common name; control characters would garble logs and CN checks.
  if (commonName.length < 1 || commonName.length > 64 || /\p{Cc}/u.test(commonName)) {
    throw new PkiInputError(
      `invalid common name ${JSON.stringify(commonName)}: use 1-64 printable characters`,
    );
  }
  return commonName;
}

/** A lower-cased host name (no wildcards: each backend gets names of its own). */
export function checkDnsName(name: string): string {
  const lower = name.toLowerCase();
  if (isIP(lower) !== 0) {
    throw new PkiInputError(`${JSON.stringify(name)} is an IP address, not a DNS name`);
  }
  if (lower.length > 253 || !lower.split('.').every((label) => DNS_LABEL.test(label))) {
    throw new PkiInputError(
      `invalid DNS name ${JSON.stringify(name)}: use dot-separated labels of a-z, 0-9 and "-"`,
    );
  }
  return lower;
}

/** An IP address in canonical form, so "0:0::1" and "::1" count as the same SAN. */
export function checkIpAddress(ip: string): string {
  const version = isIP(ip);
  if (version === 0) throw new PkiInputError(`invalid IP address ${JSON.stringify(ip)}`);
  // The WHATWG URL parser compresses IPv6 (RFC 5952); IPv4 that isIP accepts is already canonical.
  return version === 6 ? new URL(`http://[${ip}]/`).hostname.slice(1, -1) : ip;
}

/** Splits host names given together (DNS names and IP addresses) into the two SAN kinds. */
export function splitHosts(hosts: readonly string[]): {
  dnsNames: string[];
  ipAddresses: string[];
} {
  const dnsNames: string[] = [];
  const ipAddresses: string[] = [];
  for (const host of hosts) {
    if (isIP(host) === 0) dnsNames.push(checkDnsName(host));
    else ipAddresses.push(checkIpAddress(host));
  }
  return { dnsNames, ipAddresses };
}

export function unique<T>(items: readonly T[]): T[] {
  return [...new Set(items)];
}
