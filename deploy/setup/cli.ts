/**
 * `node dist/deploy/setup/cli.js secrets --out <dir> --pki <dir> --env <name> --ha-public-key <file>`:
 * fills a deployment's secrets folder (deploy/README.md, "Secrets folder"). `--help` lists the options.
 */
import { parseArgs } from 'node:util';
import { PkiInputError, checkEnvironment } from '../pki/pki.js';
import { SECRET_FILES, type SecretName, prepareSecrets } from './secrets.js';

const USAGE = `usage: node dist/deploy/setup/cli.js secrets --out <dir> --pki <dir> --env <name> --ha-public-key <file> [--no-chown]

  --out <dir>            the secrets folder to fill (outside the repository), created 0700
  --pki <dir>            the environment's PKI folder (npm run pki -- init); ca.key is never copied
  --env <name>           the environment both folders must belong to
  --ha-public-key <file> the health authority's ES256 public key (authority.pub)
  --no-chown             leave the files to the current user (systemd credentials; not root)

Certificates and keys from the PKI are copied again on every run (after a renewal); the KEK, the
database passwords and the session key pair are created once and then kept.

exit codes: 0 done, 1 failed, 2 usage error`;

export async function main(argv: readonly string[]): Promise<number> {
  let values;
  let positionals;
  try {
    ({ values, positionals } = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        out: { type: 'string' },
        pki: { type: 'string' },
        env: { type: 'string' },
        'ha-public-key': { type: 'string' },
        'no-chown': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (error) {
    return usage((error as Error).message);
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (positionals.length !== 1 || positionals[0] !== 'secrets')
    return usage('the only command is "secrets"');
  const { out, pki, env } = values;
  const haPublicKey = values['ha-public-key'];
  if (!out || !pki || !env || !haPublicKey)
    return usage('--out, --pki, --env and --ha-public-key are required');
  try {
    const status = await prepareSecrets({
      out,
      pki,
      environment: checkEnvironment(env),
      haPublicKey,
      chown: !values['no-chown'] && process.getuid?.() === 0,
    });
    console.log(`secrets for ${env} in ${out}:`);
    for (const [name, how] of Object.entries(status))
      console.log(`  ${SECRET_FILES[name as SecretName].padEnd(22)} ${how}`);
    return 0;
  } catch (error) {
    if (error instanceof PkiInputError) return usage(error.message);
    console.error(`setup: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  }
}

function usage(message: string): number {
  console.error(`setup: ${message}\n(run with --help for the options)`);
  return 2;
}

if (import.meta.url === `file://${process.argv[1]}`)
  process.exitCode = await main(process.argv.slice(2));
