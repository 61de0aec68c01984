/**
 * The campaign's backends: both started as child processes (test/floods/child.ts) from a PKI
 * and keys written to a temporary folder, and their memory read from /proc.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { authorityKeys } from '../../app-backend/test/harness.js';
import { type DeploymentPki, PKI_FILES, writePki } from '../../deploy/pki/pki.js';
import type { ChildReady, ChildRequest } from './child.js';

const CHILD = fileURLToPath(new URL('./child.js', import.meta.url));

type Request = { type: 'query'; sql: string; params?: unknown[] } | { type: 'stop' };

export class Backend {
  #next = 0;
  readonly #waiting = new Map<number, (m: { result?: unknown; error?: string }) => void>();

  constructor(
    readonly proc: ChildProcess,
    readonly publicPort: number,
    readonly internalPort: number,
  ) {
    proc.on('message', (m: { id?: number; result?: unknown; error?: string }) => {
      if (m.id === undefined) return;
      this.#waiting.get(m.id)?.(m);
      this.#waiting.delete(m.id);
    });
  }

  get pid(): number {
    return this.proc.pid as number;
  }

  #ask(request: Request): Promise<unknown> {
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#waiting.set(id, (m) => (m.error ? reject(new Error(m.error)) : resolve(m.result)));
      this.proc.send({ id, ...request } as ChildRequest);
    });
  }

  query<R>(sql: string, params: unknown[] = []): Promise<R[]> {
    return this.#ask({ type: 'query', sql, params }) as Promise<R[]>;
  }

  async stop(): Promise<void> {
    const exited = new Promise((resolve) => this.proc.once('exit', resolve));
    await this.#ask({ type: 'stop' }).catch(() => undefined);
    await exited;
  }
}

/** Start `node child.js kind` with `env`; resolves when it listens. */
function startChild(kind: 'app' | 'police', env: Record<string, string>): Promise<Backend> {
  const proc = fork(CHILD, [kind], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  return new Promise((resolve, reject) => {
    proc.once('exit', (code) => reject(new Error(`${kind} backend exited with ${code}`)));
    proc.once('message', (m: ChildReady) =>
      resolve(new Backend(proc, m.ready.publicPort, m.ready.internalPort)),
    );
  });
}

/** Memory of a process from /proc/<pid>/status, in MB: now (VmRSS) and its lifetime peak (VmHWM). */
export function memoryOf(pid: number): { rssMb: number; peakMb: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) =>
    Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1]);
  return { rssMb: kb('VmRSS') / 1024, peakMb: kb('VmHWM') / 1024 };
}

/** Samples the processes' resident memory every `ms` until stopped; reports the highest seen. */
export class RssSampler {
  readonly #timer: NodeJS.Timeout;
  readonly highest = new Map<number, number>();

  constructor(pids: readonly number[], ms = 100) {
    const sample = () => {
      for (const pid of pids) {
        try {
          const { rssMb } = memoryOf(pid);
          this.highest.set(pid, Math.max(this.highest.get(pid) ?? 0, rssMb));
        } catch {
          // The process has gone; its last sample stands.
        }
      }
    };
    sample();
    this.#timer = setInterval(sample, ms);
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}

export interface Pair {
  readonly app: Backend;
  readonly police: Backend;
  readonly pki: DeploymentPki;
  stop(): Promise<void>;
}

/**
 * Both backends, configured as in production from environment variables, `extra` on top
 * (shorter windows, other limits). The police backend first: the app backend delivers to it.
 */
export async function startPair(
  pki: DeploymentPki,
  extra: Record<string, string> = {},
): Promise<Pair> {
  const dir = mkdtempSync(join(tmpdir(), 'smartbeacon-floods-'));
  await writePki(dir, pki);
  const file = (part: keyof DeploymentPki, what: 'cert' | 'key') =>
    join(dir, PKI_FILES[part][what]);
  writeFileSync(join(dir, 'ha.pub'), authorityKeys.publicKey);
  const police = await startChild('police', {
    POLICE_TLS_CERT: file('policeBackend', 'cert'),
    POLICE_TLS_KEY: file('policeBackend', 'key'),
    POLICE_TLS_CA: file('ca', 'cert'),
    POLICE_OFFICER_PORT: '0',
    POLICE_INTERNAL_PORT: '0',
    POLICE_DATA_DIR: 'memory://',
    // Nothing to enable on the app side: the campaign enables over the internal listener itself.
    APP_BACKEND_INTERNAL_URL: 'https://localhost:9',
    ...extra,
  });
  const app = await startChild('app', {
    APP_TLS_CERT: file('appBackend', 'cert'),
    APP_TLS_KEY: file('appBackend', 'key'),
    APP_TLS_CA: file('ca', 'cert'),
    APP_HA_PUBLIC_KEY: join(dir, 'ha.pub'),
    APP_KEK: randomBytes(32).toString('base64'),
    APP_PUBLIC_PORT: '0',
    APP_INTERNAL_PORT: '0',
    APP_DATA_DIR: 'memory://',
    POLICE_BACKEND_URL: `https://localhost:${police.internalPort}`,
    ...extra,
  });
  return {
    app,
    police,
    pki,
    async stop() {
      await app.stop();
      await police.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
