/**
 * `npm run pki -- <init|renew|show> --out <dir> [options]`: makes and renews an environment's
 * deployment CA and backend certificates. `--help` lists the options.
 */
import { X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  type BackendHosts,
  type DeploymentPki,
  PKI_FILES,
  PkiInputError,
  checkEnvironment,
  createDeploymentPki,
  describeCertificate,
  environmentOfCa,
  formatSummary,
  renewLeaves,
  writePki,
} from './pki.js';

const USAGE = `usage: npm run pki -- <command> --out <dir> [options]

commands:
  init   create the environment's CA and both backend certificates
           --env <name>          environment (a-z, 0-9, "-"), e.g. prod; the CA is "SmartBeacon <name> CA"
           --app-host h1,h2      extra DNS names / IP addresses of the app backend
           --police-host h1,h2   extra DNS names / IP addresses of the police backend
           --days N              certificate validity (default 397)
           --ca-days N           CA validity (default 3650)
           --force               replace an existing CA (every certificate it signed stops being trusted)
  renew  issue new backend certificates with the CA already in <dir> (the CA is not changed)
           --env <name>          refuse unless <dir>'s CA is this environment's
           --days N, --app-host, --police-host as above (hosts default to the current certificates')
  show   print the environment, and each certificate's subject, issuer, validity and SANs

One folder and one CA per environment: nothing is issued into a folder whose CA or certificates
belong to another environment (init --force may replace a CA only with the same environment's).

exit codes: 0 done, 1 failed (e.g. CA exists or missing), 2 usage error`;

const OPTIONS = {
  out: { type: 'string' },
  env: { type: 'string' },
  'app-host': { type: 'string', multiple: true },
  'police-host': { type: 'string', multiple: true },
  days: { type: 'string' },
  'ca-days': { type: 'string' },
  force: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;
type OptionName = keyof typeof OPTIONS;
type Values = ReturnType<typeof parse>['values'];

const ALLOWED: Readonly<Record<string, readonly OptionName[]>> = {
  init: ['out', 'env', 'app-host', 'police-host', 'days', 'ca-days', 'force'],
  renew: ['out', 'env', 'app-host', 'police-host', 'days'],
  show: ['out'],
};

class UsageError extends Error {}

function parse(argv: readonly string[]) {
  return parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
}

export async function main(argv: readonly string[]): Promise<number> {
  try {
    let parsed;
    try {
      parsed = parse(argv);
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
    const { values, positionals } = parsed;
    if (values.help) {
      console.log(USAGE);
      return 0;
    }
    const [command, ...extra] = positionals;
    const allowed = command === undefined ? undefined : ALLOWED[command];
    if (!command || !allowed)
      throw new UsageError(command ? `unknown command "${command}"` : 'no command given');
    if (extra.length > 0) throw new UsageError(`unexpected argument "${extra.join(' ')}"`);
    const misplaced = Object.keys(values).filter(
      (k) => k !== 'help' && !allowed.includes(k as OptionName),
    );
    if (misplaced.length > 0)
      throw new UsageError(`"${command}" does not take --${misplaced.join(', --')}`);
    if (!values.out) throw new UsageError('--out <dir> is required');
    if (command === 'init') return await init(values.out, values);
    if (command === 'renew') return await renew(values.out, values);
    return await show(values.out);
  } catch (error) {
    if (error instanceof UsageError || error instanceof PkiInputError) {
      console.error(`pki: ${error.message}\n(run with --help for the commands and options)`);
      return 2;
    }
    console.error(`pki: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  }
}

async function init(dir: string, values: Values): Promise<number> {
  if (!values.env) throw new UsageError('init needs --env <name>');
  const environment = checkEnvironment(values.env);
  // A new CA would silently orphan every certificate the old one signed, so replacing it must be asked for.
  const existing = [PKI_FILES.ca.key, PKI_FILES.ca.cert].filter((f) => existsSync(join(dir, f)));
  if (existing.length > 0 && !values.force) {
    console.error(
      `pki: ${dir} already has a CA (${existing.join(', ')}): use "renew" for new backend certificates, or --force to replace the CA`,
    );
    return 1;
  }
  // --force renews a compromised or expiring CA; it never turns one environment's folder into another's.
  const current = await caEnvironmentIn(dir);
  if (current !== undefined && current !== UNKNOWN && current !== environment) {
    console.error(
      `pki: ${dir} holds the ${current} CA: --force replaces it only with a new ${current} CA; give ${environment} a folder of its own`,
    );
    return 1;
  }
  const pki = await createDeploymentPki({
    environment,
    hosts: hosts(values),
    validDays: days(values.days, '--days'),
    caValidDays: days(values['ca-days'], '--ca-days'),
  });
  await writePki(dir, pki);
  report(`created the ${values.env} PKI in ${dir}`, pki);
  console.log(`keep ${join(dir, PKI_FILES.ca.key)} offline: it is needed again only to renew`);
  return 0;
}

async function renew(dir: string, values: Values): Promise<number> {
  const pki = await renewLeaves(dir, {
    environment: values.env === undefined ? undefined : checkEnvironment(values.env),
    hosts: hosts(values),
    validDays: days(values.days, '--days'),
  });
  report(`renewed the backend certificates in ${dir} (CA unchanged)`, pki);
  return 0;
}

async function show(dir: string): Promise<number> {
  let ca: X509Certificate | undefined;
  let shown = 0;
  const environment = await caEnvironmentIn(dir);
  if (environment !== undefined) console.log(`environment: ${environment}`);
  for (const files of Object.values(PKI_FILES)) {
    const path = join(dir, files.cert);
    if (!existsSync(path)) continue;
    const pem = await readFile(path, 'utf8');
    const cert = new X509Certificate(pem);
    const lines = formatSummary(describeCertificate(pem));
    if (files === PKI_FILES.ca) ca = cert;
    else if (ca)
      lines.push(`  signed by ${PKI_FILES.ca.cert}: ${cert.verify(ca.publicKey) ? 'yes' : 'NO'}`);
    // Only presence is shown: a key's content never goes to a terminal.
    lines.push(`  key:      ${existsSync(join(dir, files.key)) ? files.key : 'absent'}`);
    console.log([files.cert, ...lines].join('\n'));
    shown++;
  }
  if (shown === 0) {
    console.error(`pki: no certificates in ${dir}: run "init" first`);
    return 1;
  }
  return 0;
}

const UNKNOWN = 'unknown';

/** The environment of `dir`'s CA; undefined without a CA, UNKNOWN for one this tool did not make. */
async function caEnvironmentIn(dir: string): Promise<string | undefined> {
  const path = join(dir, PKI_FILES.ca.cert);
  if (!existsSync(path)) return undefined;
  try {
    return environmentOfCa(await readFile(path, 'utf8')) ?? UNKNOWN;
  } catch {
    return UNKNOWN;
  }
}

function report(headline: string, pki: DeploymentPki): void {
  console.log(headline);
  for (const [part, files] of Object.entries(PKI_FILES)) {
    const summary = describeCertificate(pki[part as keyof DeploymentPki].cert);
    console.log(
      `  ${files.cert.padEnd(20)} ${summary.subject}, until ${summary.notAfter.toISOString()}`,
    );
  }
}

function hosts(values: Values): BackendHosts {
  const split = (list: readonly string[] | undefined) =>
    list
      ?.flatMap((item) => item.split(','))
      .map((h) => h.trim())
      .filter((h) => h !== '');
  return { appBackend: split(values['app-host']), policeBackend: split(values['police-host']) };
}

function days(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value))
    throw new UsageError(`${flag} must be a whole number of days, got "${value}"`);
  return Number(value);
}

if (import.meta.url === `file://${process.argv[1]}`)
  process.exitCode = await main(process.argv.slice(2));
