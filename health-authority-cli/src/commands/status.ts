import { CliError, EXIT } from '../errors.js';
import { type Answer, type ServerCertificate, send } from '../http.js';
import type { Context, Outcome } from './outcome.js';
import { serverCode, serverFrom } from './server.js';

const DAY = 86_400_000;
const EXPIRY_WARNING_DAYS = 30;

/** status: GET /healthz and /readyz; reachable, ready, and the server certificate. */
export async function statusCommand({ values, io }: Context): Promise<Outcome> {
  const server = await serverFrom(values);
  let health: Answer;
  try {
    health = await send(server, 'GET', '/healthz');
  } catch (error) {
    if (!(error instanceof CliError)) throw error;
    return {
      exitCode: EXIT.unavailable,
      json: { server: server.url.href, reachable: false, ready: false, error: error.code },
      text: `server:      ${server.url.href}\nreachable:   no`,
      error: error.message,
    };
  }
  let ready: Answer | undefined;
  let readyError: CliError | undefined;
  try {
    ready = await send(server, 'GET', '/readyz');
  } catch (error) {
    if (!(error instanceof CliError)) throw error;
    readyError = error;
  }
  const reachable = health.status === 200;
  const isReady = ready?.status === 200;
  const certificate = health.certificate;
  const daysLeft = certificate
    ? Math.floor((Date.parse(certificate.validTo) - io.now()) / DAY)
    : undefined;
  if (daysLeft !== undefined && daysLeft < EXPIRY_WARNING_DAYS)
    io.stderr(`warning: the server certificate expires in ${daysLeft} days: renew it`);
  const lines = [
    `server:      ${server.url.href}`,
    `reachable:   ${reachable ? 'yes' : 'no'} (GET /healthz ${health.status})`,
    `ready:       ${isReady ? 'yes' : 'no'} (GET /readyz ${ready ? ready.status : (readyError?.code ?? '-')})`,
    ...certificateLines(certificate, daysLeft),
  ];
  const failure =
    readyError?.message ??
    (!reachable
      ? `GET /healthz answered ${health.status} ${serverCode(health)}`
      : !isReady && ready
        ? `the app backend is not ready: GET /readyz answered ${ready.status} (database unavailable?)`
        : undefined);
  return {
    exitCode: reachable && isReady ? EXIT.ok : EXIT.unavailable,
    json: {
      server: server.url.href,
      reachable,
      ready: isReady,
      healthzStatus: health.status,
      readyzStatus: ready?.status ?? null,
      certificate: certificate ? { ...certificate, daysLeft } : null,
    },
    text: lines.join('\n'),
    ...(failure === undefined ? {} : { error: failure }),
  };
}

function certificateLines(
  c: ServerCertificate | undefined,
  daysLeft: number | undefined,
): string[] {
  if (!c) return ['certificate: (not available)'];
  return [
    `certificate: ${c.subject}`,
    `  issuer:    ${c.issuer}`,
    `  valid:     ${c.validFrom} to ${c.validTo} (${daysLeft} days left)`,
    `  names:     ${c.subjectAltName || '-'}`,
    `  sha-256:   ${c.fingerprint256}`,
  ];
}
