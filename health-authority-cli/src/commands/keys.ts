import { KEY_FILES, writeAuthorityKeys } from '../keys.js';
import type { Context, Outcome } from './outcome.js';

/** keys --out <dir> [--force] */
export async function keysCommand({ values }: Context): Promise<Outcome> {
  const out = values.out as string;
  const written = await writeAuthorityKeys(out, values.force === true);
  return {
    exitCode: 0,
    json: {
      privateKey: written.privateKeyPath,
      publicKey: written.publicKeyPath,
      publicKeySha256: written.fingerprint,
    },
    text: [
      `wrote ${written.privateKeyPath} (private key, mode 0600: keep it here, back it up offline)`,
      `wrote ${written.publicKeyPath} (public key)`,
      `public key SHA-256 (SPKI): ${written.fingerprint}`,
      `give ${KEY_FILES.publicKey} to the app backend operators (APP_HA_PUBLIC_KEY) and to the officers' provisioning tool`,
    ].join('\n'),
  };
}
