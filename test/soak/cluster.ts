/**
 * A private PostgreSQL cluster for the app backend's database, made by the harness with the
 * server's own initdb and pg_ctl on a port and data directory of its own, so it can be restarted
 * without touching any shared server. `restart()` is an immediate shutdown (no checkpoint, as a
 * crash leaves it) followed by a start, which runs crash recovery from the WAL.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './processes.js';

const run = promisify(execFile);
const ROOT = '/usr/lib/postgresql';

/** The newest server binaries installed, or a reason there are none to use. */
export function clusterBinaries(): { bin: string } | { reason: string } {
  if (!existsSync(ROOT)) return { reason: `no PostgreSQL server binaries under ${ROOT}` };
  const versions = readdirSync(ROOT)
    .filter((v) => existsSync(join(ROOT, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  if (!versions[0]) return { reason: `no initdb under ${ROOT}/*/bin` };
  if (process.getuid?.() !== 0 && process.env.USER !== 'postgres')
    return { reason: 'initdb refuses root and runs as postgres: needs root (runuser) or postgres' };
  return { bin: join(ROOT, versions[0], 'bin') };
}

export class PrivateCluster {
  restarts = 0;

  private constructor(
    private readonly bin: string,
    readonly dir: string,
    readonly port: number,
  ) {}

  /** initdb and start; as root, the server's own tools run as the postgres user. */
  static async create(bin: string): Promise<PrivateCluster> {
    const dir = mkdtempSync(join(tmpdir(), 'smartbeacon-soak-pg-'));
    const cluster = new PrivateCluster(bin, dir, await freePort());
    if (process.getuid?.() === 0) await run('chown', ['postgres:postgres', dir]);
    await cluster.#pg('initdb', [
      '-D',
      join(dir, 'data'),
      '-A',
      'trust',
      '-U',
      'postgres',
      '--no-sync',
    ]);
    await cluster.#pg('pg_ctl', [
      '-D',
      join(dir, 'data'),
      '-l',
      join(dir, 'server.log'),
      '-o',
      `-p ${cluster.port} -k ${dir} -c listen_addresses=127.0.0.1`,
      '-w',
      'start',
    ]);
    return cluster;
  }

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  /** Immediate shutdown (every backend killed, no checkpoint), then start with crash recovery. */
  async restart(): Promise<void> {
    await this.#pg('pg_ctl', [
      '-D',
      join(this.dir, 'data'),
      '-l',
      join(this.dir, 'server.log'),
      '-m',
      'immediate',
      '-w',
      'restart',
    ]);
    this.restarts++;
  }

  async destroy(): Promise<void> {
    await this.#pg('pg_ctl', ['-D', join(this.dir, 'data'), '-m', 'fast', '-w', 'stop']).catch(
      () => undefined,
    );
    rmSync(this.dir, { recursive: true, force: true });
  }

  #pg(tool: string, args: string[]) {
    const path = join(this.bin, tool);
    return process.getuid?.() === 0
      ? run('runuser', ['-u', 'postgres', '--', path, ...args], { timeout: 120_000 })
      : run(path, args, { timeout: 120_000 });
  }
}
