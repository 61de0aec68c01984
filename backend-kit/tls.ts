import type { TLSSocket } from 'node:tls';

/**
 * The identity (certificate common name) of a peer whose client certificate chained to our CA,
 * or undefined. Listeners that require mTLS refuse everyone else during the handshake already.
 */
export function peerIdentity(socket: TLSSocket): string | undefined {
  if (!socket.authorized) return undefined;
  const cn = socket.getPeerCertificate()?.subject?.CN;
  return typeof cn === 'string' ? cn : undefined;
}

/** Modern TLS only, for every listener and client we run. */
export const TLS_DEFAULTS = { minVersion: 'TLSv1.2' as const };
