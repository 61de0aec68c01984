/**
 * A backend as a real child process from its real entry point: started, SIGKILLed, restarted on
 * the same ports and configuration. Logs go to a file of the run, never to the terminal.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { request } from 'node:https';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

const DIST = fileURLToPath(new URL('../../', import.meta.url));
/** deploy/systemd restarts a failed backend after 5 s; the soak waits 1 s to keep runs short. */
const RESTART_MS = 1_000;

export class BackendProcess {
  #child: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  /** Starts made, the first one included. */
  starts = 0;
  kills = 0;
  /** Exits nobody asked for (a crash): each restarted, as systemd's Restart=on-failure would. */
  crashes = 0;
  #stopping = false;

  constructor(
    readonly name: string,
    private readonly entry: string,
    private readonly env: Record<string, string>,
    private readonly logFile: string,
    /** The port that answers GET /healthz once the process is up. */
    private readonly healthPort: number,
    private readonly ca: string,
  ) {}

  get running(): boolean {
    return this.#child !== undefined;
  }

  /** Start, and wait until it answers its health check. */
  async start(timeoutMs = 60_000): Promise<void> {
    // Already back (restarted after a crash): only wait until it answers.
    if (this.#child) return this.up(timeoutMs);
    const child = spawn(process.execPath, [`${DIST}${this.entry}`], {
      env: { PATH: process.env.PATH ?? '', ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const log = createWriteStream(this.logFile, { flags: 'a' });
    child.stdout?.pipe(log);
    child.stderr?.pipe(log);
    this.#child = child;
    this.starts++;
    let gone = false;
    this.#stopping = false;
    this.#exited = new Promise((resolve) =>
      child.once('exit', () => {
        gone = true;
        if (this.#child === child) this.#child = undefined;
        resolve();
        // Not asked to go: it crashed. Back after RESTART_MS, as deploy/systemd's units do.
        if (!this.#stopping && this.starts > 0) {
          this.crashes++;
          setTimeout(() => void this.#restartAfterCrash(), RESTART_MS);
        }
      }),
    );
    const deadline = Date.now() + timeoutMs;
    while (!(await healthy(this.healthPort, this.ca))) {
      if (gone) throw new Error(`${this.name} exited while starting (log: ${this.logFile})`);
      if (Date.now() > deadline) throw new Error(`${this.name} did not become healthy`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  #restartAfterCrash(): Promise<void> {
    if (this.#child || this.#stopping) return Promise.resolve();
    return this.start().catch(() => undefined);
  }

  /** Resolves once the process is up again after a crash (or at once if it is up). */
  async up(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.#child || !(await healthy(this.healthPort, this.ca))) {
      if (Date.now() > deadline) throw new Error(`${this.name} is not running`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** SIGKILL: no shutdown code runs, exactly as a crash or an OOM kill. */
  async kill(): Promise<void> {
    this.#stopping = true;
    if (!this.#child) return;
    this.kills++;
    this.#child.kill('SIGKILL');
    await this.#exited;
  }

  /** SIGTERM (a clean stop), SIGKILL if it has not gone within `graceMs`. */
  async stop(graceMs = 15_000): Promise<void> {
    this.#stopping = true;
    const child = this.#child;
    if (!child) return;
    child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await this.#exited;
    clearTimeout(killer);
  }
}

function healthy(port: number, ca: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(
      { host: '127.0.0.1', port, path: '/healthz', ca, servername: 'localhost', timeout: 2000 },
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

/** A port the system hands out now (free until someone else takes it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}
