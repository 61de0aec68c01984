import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, readFileSync } from 'node:fs';
import { request } from 'node:https';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

/** A backend in a process of its own, started from its real entry point and configuration. */
export class ServiceProcess {
  readonly #child: ChildProcess;
  readonly #exited: Promise<number | null>;

  constructor(
    readonly name: string,
    entry: string,
    env: Record<string, string>,
    readonly logFile: string,
  ) {
    const script = fileURLToPath(new URL(`../../${entry}`, import.meta.url));
    this.#child = spawn(process.execPath, [script], {
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    // Its logs (already free of keys, tokens and addresses of clients) go to a file, not the screen.
    const log = createWriteStream(logFile, { flags: 'a' });
    this.#child.stdout?.pipe(log);
    this.#child.stderr?.pipe(log);
    this.#exited = new Promise((resolve) => this.#child.once('exit', (code) => resolve(code)));
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  /** Resolves with the exit code if the process ends (for "it died while starting"). */
  get exited(): Promise<number | null> {
    return this.#exited;
  }

  /** SIGTERM, then SIGKILL if it has not gone within `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    this.#child.kill('SIGTERM');
    const killer = setTimeout(() => this.#child.kill('SIGKILL'), graceMs);
    await this.#exited;
    clearTimeout(killer);
  }
}

/** GET a path over HTTPS until it answers 200, or fail when the process exits or time runs out. */
export async function waitHealthy(
  service: ServiceProcess,
  port: number,
  ca: string,
  path = '/healthz',
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited: number | null | undefined;
  void service.exited.then((code) => (exited = code));
  while (Date.now() < deadline) {
    if (exited !== undefined)
      throw new Error(
        `${service.name} exited (code ${exited}) while starting:\n${tail(service.logFile)}\n` +
          `(full log: ${service.logFile}; a port in use? try --port-base 0)`,
      );
    if (await healthy(port, ca, path)) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${service.name} did not become healthy within ${timeoutMs / 1000} s`);
}

/** The last lines of a log, for a failure message. */
function tail(file: string, lines = 5): string {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

function healthy(port: number, ca: string, path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(
      { host: '127.0.0.1', port, path, method: 'GET', ca, servername: 'localhost', timeout: 2000 },
      (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      },
    );
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

/** Four ports: the ones asked for, or free ones the system hands out. */
export async function choosePorts(base: number): Promise<[number, number, number, number]> {
  if (base > 0) return [base, base + 1, base + 2, base + 3];
  const one = () =>
    new Promise<number>((resolve, reject) => {
      const s = createServer();
      s.once('error', reject);
      s.listen(0, '127.0.0.1', () => {
        const { port } = s.address() as { port: number };
        s.close(() => resolve(port));
      });
    });
  return [await one(), await one(), await one(), await one()];
}

/**
 * With DATABASE_URL, each backend gets a database of its own on that server (the privacy split:
 * no table is shared), created if missing.
 */
export async function separateDatabases(url: string): Promise<{ app: string; police: string }> {
  const base = new URL(url);
  const name = base.pathname.replace(/^\//, '') || 'smartbeacon';
  const out = { app: `${name}_app`, police: `${name}_police` };
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  try {
    for (const db of Object.values(out)) {
      const { rows } = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [db]);
      if (!rows.length) await admin.query(`CREATE DATABASE "${db.replace(/"/g, '')}"`);
    }
  } finally {
    await admin.end();
  }
  const withDb = (db: string) => {
    const u = new URL(url);
    u.pathname = `/${db}`;
    return u.toString();
  };
  return { app: withDb(out.app), police: withDb(out.police) };
}

export function logsDir(dataDir: string): string {
  const dir = join(dataDir, 'logs');
  mkdirSync(dir, { recursive: true });
  return dir;
}
