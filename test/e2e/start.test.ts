import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const START = fileURLToPath(new URL('../../scripts/start.js', import.meta.url));

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('npm start: the whole system on this machine', function () {
  this.timeout(180_000);
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'sb-start-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('provisions, registers and relays; a departure reaches the police backend; Ctrl-C leaves no process behind', async () => {
    const env = { ...process.env };
    delete env.DATABASE_URL; // the embedded databases, as on a fresh machine
    const child = spawn(
      process.execPath,
      [
        START,
        ...['--data-dir', dir, '--port-base', '0', '--beacons', '2', '--plain'],
        ...['--cadence', '5', '--upload', '2', '--window', '10', '--grace', '0'],
        ...['--leave-after', '3', '--timeout', '150'],
      ],
      { env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const exited = new Promise<number | null>((resolve) =>
      child.once('exit', (code) => resolve(code)),
    );
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (c: Buffer) => {
        out += c.toString();
        if (/the police backend shows NO_PRESENCE for \d+ Harbour Road/.test(out)) resolve();
      });
      void exited.then((code) => reject(new Error(`npm start exited (${code}) early:\n${out}`)));
    });

    const pids = [...out.matchAll(/\(pid (\d+)\)/g)].map((m) => Number(m[1]));
    assert.equal(pids.length, 2, 'both backends ran in processes of their own');
    assert.ok(pids.every(alive));
    assert.match(out, /sign in as demo-[0-9a-f]{4} \/ \S{16}/);
    assert.match(
      out,
      /home 1: beacon SB-[0-9A-F]{8} installed at 3 Juniper Close, quarantine registered, relay running/,
    );
    assert.match(out, /home 2: the person leaves home/);
    assert.doesNotMatch(
      out,
      /NO_PRESENCE for 3 Juniper Close/,
      'the person at home raised nothing',
    );

    child.kill('SIGINT');
    assert.equal(await exited, 0);
    assert.match(out, /stopped: both backends and every relay/);
    assert.ok(!pids.some(alive), 'no backend process left behind');
  });

  it('lists its options and refuses bad ones', async () => {
    const run = (args: string[]) =>
      new Promise<{ code: number | null; out: string }>((resolve) => {
        const c = spawn(process.execPath, [START, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        c.stdout.on('data', (d: Buffer) => (out += d.toString()));
        c.stderr.on('data', (d: Buffer) => (out += d.toString()));
        c.once('exit', (code) => resolve({ code, out }));
      });
    const help = await run(['--help']);
    assert.equal(help.code, 0);
    for (const option of [
      '--beacons',
      '--scenario',
      '--cadence',
      '--window',
      '--grace',
      '--port-base',
      'DATABASE_URL',
    ])
      assert.ok(help.out.includes(option), option);
    const bad = await run(['--window', '5']);
    assert.equal(bad.code, 2);
    assert.match(bad.out, /--window must be an integer in \[10, 86400\]/);
  });
});
