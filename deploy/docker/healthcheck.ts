/**
 * Container health check: `node dist/deploy/docker/healthcheck.js <app-backend|police-backend> [url]`.
 * GETs the backend's own HTTPS listener over loopback, trusting only the deployment CA, and exits
 * 0 on a 2xx answer, 1 otherwise. It reads only the port and the CA path from the environment,
 * never a secret: Docker runs it outside the entrypoint that resolves the *_FILE variables.
 */
import { readFileSync } from 'node:fs';
import { request } from 'node:https';

export type Service = 'app-backend' | 'police-backend';

export interface Probe {
  readonly url: string;
  readonly caPath: string | undefined;
}

// The listener that needs no client certificate, and a path on it that answers without signing in.
const PROBES: Readonly<
  Record<Service, { portVar: string; defaultPort: number; path: string; caVar: string }>
> = {
  'app-backend': {
    portVar: 'APP_PUBLIC_PORT',
    defaultPort: 8443,
    path: '/healthz',
    caVar: 'APP_TLS_CA',
  },
  'police-backend': {
    portVar: 'POLICE_OFFICER_PORT',
    defaultPort: 9443,
    path: '/healthz',
    caVar: 'POLICE_TLS_CA',
  },
};

export function isService(name: string | undefined): name is Service {
  return name === 'app-backend' || name === 'police-backend';
}

/** What to ask, from the same variables (and defaults) the backend's own configuration reads. */
export function probeFor(
  service: Service,
  env: Record<string, string | undefined>,
  url?: string,
): Probe {
  const probe = PROBES[service];
  const port = env[probe.portVar] || String(probe.defaultPort);
  // 127.0.0.1, not "localhost": the backends listen on IPv4, and every certificate has that IP SAN.
  return { url: url ?? `https://127.0.0.1:${port}${probe.path}`, caPath: env[probe.caVar] };
}

/** The status code, or the reason there is none. */
export function check(probe: Probe, timeoutMs = 4000): Promise<number | string> {
  return new Promise((resolve) => {
    let ca: string | undefined;
    try {
      ca = probe.caPath ? readFileSync(probe.caPath, 'utf8') : undefined;
    } catch {
      resolve(`cannot read the CA ${probe.caPath}`);
      return;
    }
    if (ca === undefined) {
      resolve('no CA: the TLS CA variable is not set');
      return;
    }
    const req = request(
      probe.url,
      { method: 'GET', ca, timeout: timeoutMs, agent: false },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    req.end();
  });
}

export async function main(
  argv: readonly string[],
  env: Record<string, string | undefined>,
  report: (line: string) => void = console.error,
): Promise<number> {
  const [service, url] = argv;
  if (!isService(service)) {
    report('usage: healthcheck.js <app-backend|police-backend> [url]');
    return 2;
  }
  const probe = probeFor(service, env, url);
  const result = await check(probe);
  const healthy = typeof result === 'number' && result >= 200 && result < 300;
  // Docker keeps this output with the check's result (docker inspect): it says why.
  if (!healthy) report(`healthcheck: ${probe.url}: ${result}`);
  return healthy ? 0 : 1;
}

if (import.meta.url === `file://${process.argv[1]}`)
  process.exitCode = await main(process.argv.slice(2), process.env);
