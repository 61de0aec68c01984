/**
 * Everything the operator hands the CLI, read and checked before anything is sent. Each problem
 * is a usage error (exit 2) that names the option or file and never echoes a secret value.
 */
import { type KeyObject, X509Certificate, createPrivateKey } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { SealedKeyError, openSealedBeaconKey } from '../../protocol/sealed-key.js';
import { CliError, quoted, usageError } from './errors.js';

/** The app backend's rule for beacon IDs (app-backend/src/quarantines.ts). */
export const BEACON_ID = /^[A-Za-z0-9-]{1,32}$/;
const MAX_INPUT_FILE = 64 * 1024;

/** Read a small input file; a missing, unreadable or oversized file is a usage error naming it. */
export async function readInput(path: string, what: string): Promise<Buffer> {
  try {
    const info = await stat(path);
    if (!info.isFile()) throw usageError(`${what} ${path} is not a file`);
    if (info.size > MAX_INPUT_FILE)
      throw usageError(`${what} ${path} is too large to be what it should (${info.size} bytes)`);
    return await readFile(path);
  } catch (error) {
    if (error instanceof CliError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    throw usageError(
      code === 'ENOENT'
        ? `${what} ${path} does not exist`
        : code === 'EACCES'
          ? `${what} ${path} cannot be read (permission denied)`
          : `${what} ${path} cannot be read (${code ?? String(error)})`,
      'INPUT_UNREADABLE',
    );
  }
}

export interface AuthorityKey {
  readonly pem: string;
  readonly key: KeyObject;
  /** Set when other users could read the key file. */
  readonly warning?: string;
}

/** The authority's private key: a PEM P-256 key (authority.key from "keys"). */
export async function readAuthorityKey(path: string): Promise<AuthorityKey> {
  const pem = (await readInput(path, '--key')).toString('utf8');
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch {
    throw usageError(`--key ${path} is not a PEM private key`, 'KEY_INVALID');
  }
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1')
    throw usageError(
      `--key ${path} is not a P-256 (ES256) key; make one with "smartbeacon-ha keys"`,
      'KEY_INVALID',
    );
  const mode = (await stat(path)).mode & 0o777;
  return mode & 0o077
    ? {
        pem,
        key,
        warning: `warning: ${path} can be read by other users (mode ${mode.toString(8).padStart(4, '0')}); chmod 600 it`,
      }
    : { pem, key };
}

/** The deployment CA certificate(s), PEM, that the server's certificate must chain to. */
export async function readCa(path: string): Promise<string> {
  const pem = (await readInput(path, '--ca')).toString('utf8');
  try {
    new X509Certificate(pem);
  } catch {
    throw usageError(`--ca ${path} is not a PEM certificate`, 'CA_INVALID');
  }
  return pem;
}

/** The app backend's base URL: https only, no credentials, query or fragment. */
export function parseServer(value: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw usageError(`--server "${value}" is not a URL (e.g. https://app.example.org:8443)`);
  }
  if (url.protocol !== 'https:')
    throw usageError(`--server must be an https:// URL, got ${url.protocol}//`);
  if (url.username || url.password || url.search || url.hash)
    throw usageError('--server must not carry credentials, a query or a fragment');
  return url;
}

function wholeNumber(value: string, flag: string, min: number, max: number, what: string): number {
  const n = /^\d{1,15}$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max)
    throw usageError(`${flag} must be ${what} from ${min} to ${max}, got "${value}"`);
  return n;
}

/** T_PAST: the DP-3T epoch / day number of the infection, an unsigned 32-bit integer. */
export const parseTPast = (value: string) =>
  wholeNumber(value, '--t-past', 0, 0xffffffff, 'a whole number');

export const parseWindow = (value: string) =>
  wholeNumber(value, '--window', 120, 86_400, 'a whole number of seconds');

export const parseTimeout = (value: string) =>
  wholeNumber(value, '--timeout', 1, 600, 'a whole number of seconds');

export function parseBeaconId(value: string): string {
  if (!BEACON_ID.test(value))
    throw usageError(`--beacon must be 1-32 of A-Z a-z 0-9 "-" (e.g. SB-0001), got "${value}"`);
  return value;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** --absence: the absence ID the app backend gave out, a UUID (lower case, as it writes them). */
export function parseAbsenceId(value: string): string {
  if (!UUID.test(value))
    throw usageError(
      `--absence must be an absence ID as "absences" lists it (a UUID such as 5d227d84-3c1e-4b7a-9f0e-2a6b8c4d1e3f), got ${quoted(value)}`,
    );
  return value.toLowerCase();
}

/** 32 bytes from 64 hex digits; the message says what is wrong without showing the value. */
export function parseKeyHex(text: string, source: string): Uint8Array {
  const hex = text.trim();
  if (!/^[0-9a-fA-F]{64}$/.test(hex))
    throw usageError(
      `${source} must be 32 bytes written as 64 hex digits (0-9, a-f); what was given has ${hex.length} characters${/^[0-9a-fA-F]*$/.test(hex) ? '' : ', not all of them hex digits'}`,
      'BAD_KEY_HEX',
    );
  const bytes = new Uint8Array(Buffer.from(hex, 'hex'));
  if (bytes.every((b) => b === 0))
    throw usageError(`${source} is all zeros: that is not a real key`, 'BAD_KEY_HEX');
  return bytes;
}

export interface SecretSource {
  readonly bytes: Uint8Array;
  /** Set when the key was typed on the command line. */
  readonly warning?: string;
}

/** --sk-t-past: "@file", "-" (standard input) or the hex itself. */
export async function readSkTPast(
  value: string,
  readStdin: () => Promise<string>,
): Promise<SecretSource> {
  if (value === '-')
    return { bytes: parseKeyHex(await readStdin(), '--sk-t-past (standard input)') };
  if (value.startsWith('@')) {
    const path = value.slice(1);
    const text = (await readInput(path, '--sk-t-past file')).toString('utf8');
    return { bytes: parseKeyHex(text, `--sk-t-past file ${path}`) };
  }
  return {
    bytes: parseKeyHex(value, '--sk-t-past'),
    warning:
      'warning: SK_T_PAST on the command line is visible to other users (ps) and kept in shell history; prefer --sk-t-past @file or -',
  };
}

export interface OpenedSealedKey {
  readonly beaconId: string;
  readonly skBeacon: Uint8Array;
}

/** Open the provisioning tool's sealed key file with the authority's private key. */
export async function openSealedKeyFile(
  path: string,
  authorityKeyPem: string,
): Promise<OpenedSealedKey> {
  const raw = (await readInput(path, '--sealed-key')).toString('utf8');
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    throw usageError(
      `--sealed-key ${path} is not a SmartBeacon sealed key file (not JSON)`,
      'SEALED_KEY_INVALID',
    );
  }
  let opened: OpenedSealedKey;
  try {
    opened = openSealedBeaconKey(authorityKeyPem, json);
  } catch (error) {
    if (!(error instanceof SealedKeyError)) throw error;
    const shape = error.message.startsWith('not a');
    throw usageError(
      shape
        ? `--sealed-key ${path} is not a SmartBeacon sealed key file (smartbeacon-sealed-key/v1)`
        : `--sealed-key ${path} does not open with --key: it was sealed for another authority key, or it was altered. Check that the provisioning tool used this authority's authority.pub`,
      shape ? 'SEALED_KEY_INVALID' : 'SEALED_KEY_WRONG_KEY',
    );
  }
  if (!BEACON_ID.test(opened.beaconId)) {
    opened.skBeacon.fill(0);
    throw usageError(
      `--sealed-key ${path} names a beacon ID the app backend does not accept`,
      'SEALED_KEY_INVALID',
    );
  }
  return opened;
}
