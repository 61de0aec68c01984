import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestBeacon } from '../../app-backend/test/harness.js';
import { tokenAdvertisements } from '../../protocol/frames/check.js';
import { ManualClock } from '../../test/support/clock.js';
import { TokenBuffer, encodeBuffer, tokenHash } from '../src/buffer.js';
import { BUFFER_FILE, DUMMY_FILE, PhoneRelay } from '../src/relay.js';
import { ManualScheduler } from '../src/scheduler.js';
import type { PresenceTransport } from '../src/transport.js';
import { MIN, removeDir, tempDir } from './support.js';

const T = 1_795_392_000_000;
const token = (i: number) => {
  const t = new Uint8Array(64);
  new DataView(t.buffer).setUint32(0, i);
  t[63] = 0x5a;
  return t;
};
/** A transport that must not be used: these tests never upload. */
const offline: PresenceTransport = {
  send: () => Promise.reject(new Error('not in this test')),
};

describe('relay: the persistent token buffer', () => {
  let dir: string;
  let path: string;
  beforeEach(() => {
    dir = tempDir('buffer');
    path = join(dir, BUFFER_FILE);
  });
  afterEach(() => removeDir(dir));

  it('is bounded: 1,440 tokens by default, the oldest dropped beyond it, file size fixed by the count', () => {
    const b = TokenBuffer.open(path);
    for (let batch = 0; batch < 3; batch++)
      b.add(
        Array.from({ length: 500 }, (_, i) => ({
          token: token(batch * 500 + i),
          heardAt: T + (batch * 500 + i) * MIN,
        })),
      );
    assert.equal(b.size, 1440);
    assert.equal(b.droppedOldest, 60);
    assert.deepEqual(b.oldest(1)[0]?.token, token(60), 'the oldest went first');
    assert.equal(statSync(path).size, 12 + 1440 * 72 + 32);
    const again = TokenBuffer.open(path);
    assert.deepEqual(
      again.entries().map((e) => [e.hash, e.heardAt]),
      b.entries().map((e) => [e.hash, e.heardAt]),
      'everything buffered survives a reopen, in order',
    );
    assert.equal(again.problem, undefined);
  });

  it('drops tokens older than its age bound (24 h), and trims a file made under a larger bound', () => {
    const b = TokenBuffer.open(path);
    b.add([0, 1, 2].map((i) => ({ token: token(i), heardAt: T + i * 60 * MIN })));
    assert.equal(b.expire(T + 25 * 60 * MIN), 1);
    assert.equal(b.size, 2);
    const smaller = TokenBuffer.open(path, { limit: 1 });
    assert.equal(smaller.size, 1);
    assert.deepEqual(smaller.oldest(1)[0]?.token, token(2));
    assert.equal(TokenBuffer.open(path).size, 1, 'the trim was saved');
  });

  it('is replaced atomically: a crash before the rename leaves the previous file whole', () => {
    const b = TokenBuffer.open(path);
    b.add([{ token: token(1), heardAt: T }]);
    const inode = statSync(path).ino;
    b.add([{ token: token(2), heardAt: T + MIN }]);
    assert.notEqual(
      statSync(path).ino,
      inode,
      'each save writes a new file and renames it over the old',
    );
    const before = readFileSync(path);

    let crashed = 0;
    const dying = TokenBuffer.open(path, {
      write: {
        beforeRename: () => {
          crashed++;
          throw new Error('power cut');
        },
      },
    });
    assert.throws(() => dying.add([{ token: token(3), heardAt: T + 2 * MIN }]), /power cut/);
    assert.equal(crashed, 1);
    assert.deepEqual(readFileSync(path), before, 'the file on disk is the last complete one');
    assert.equal(
      readdirSync(dir).filter((n) => n.includes('.tmp-')).length,
      1,
      'the half-done write is a separate file',
    );

    const reopened = TokenBuffer.open(path);
    assert.deepEqual(
      reopened.entries().map((e) => e.hash),
      [token(1), token(2)].map(tokenHash),
    );
    assert.equal(
      readdirSync(dir).filter((n) => n.includes('.tmp-')).length,
      0,
      'and is cleaned up at the next open',
    );
  });

  for (const [name, corrupt] of [
    ['garbage', () => Buffer.from('{"tokens": ["not what we write"]}')],
    [
      'a flipped bit',
      () => {
        const good = encodeBuffer([{ token: token(1), heardAt: T, hash: tokenHash(token(1)) }]);
        good[20] = (good[20] as number) ^ 0x04;
        return good;
      },
    ],
    [
      'a truncated file',
      () =>
        encodeBuffer([{ token: token(1), heardAt: T, hash: tokenHash(token(1)) }]).subarray(0, 50),
    ],
  ] as const) {
    it(`reports a corrupt file (${name}) clearly, moves it aside and carries on: no crash loop`, () => {
      const bytes = corrupt();
      writeFileSync(path, bytes);
      const clock = new ManualClock(T);
      const make = () =>
        new PhoneRelay({
          stateDir: dir,
          mode: { kind: 'quarantined', skTPast: new Uint8Array(32).fill(1) },
          transport: offline,
          scheduler: new ManualScheduler(clock),
        });
      const relay = make();
      const [problem] = relay.status().problems;
      assert.match(
        problem ?? '',
        /token buffer file was unusable \(.+\); moved aside to .*buffer\.bin\.corrupt-.*, starting with an empty buffer/,
      );
      const aside = readdirSync(dir).filter((n) => n.startsWith(`${BUFFER_FILE}.corrupt-`));
      assert.equal(aside.length, 1);
      assert.deepEqual(
        readFileSync(join(dir, aside[0] as string)),
        Buffer.from(bytes),
        'kept for inspection',
      );
      assert.equal(existsSync(path), false);

      // It works: a token heard is buffered and on disk, and the next start is clean.
      const beacon = new TestBeacon();
      const frames = tokenAdvertisements(beacon.token(clock.ms));
      for (const f of [...frames, ...frames]) relay.hear('c8:4b:1a:00:00:01', f, clock.ms);
      assert.equal(relay.status().buffer.tokens, 1);
      const next = make();
      assert.deepEqual(next.status().problems, []);
      assert.equal(next.status().buffer.tokens, 1);
    });
  }

  it('a relay bounds its buffer too: the oldest tokens go when it is full', () => {
    const clock = new ManualClock(T);
    const relay = new PhoneRelay({
      stateDir: dir,
      mode: { kind: 'quarantined', skTPast: new Uint8Array(32).fill(1) },
      transport: offline,
      scheduler: new ManualScheduler(clock),
      bufferLimit: 10,
    });
    const beacon = new TestBeacon();
    const heard: string[] = [];
    for (let i = 0; i < 15; i++) {
      clock.advance(MIN);
      const t = beacon.token(clock.ms);
      heard.push(tokenHash(t));
      const frames = tokenAdvertisements(t);
      for (const f of [...frames, ...frames]) relay.hear('c8:4b:1a:00:00:01', f, clock.ms);
    }
    const s = relay.status();
    assert.equal(s.buffer.tokens, 10);
    assert.equal(s.buffer.droppedOldest, 5);
    assert.deepEqual(
      TokenBuffer.open(path)
        .entries()
        .map((e) => e.hash),
      heard.slice(5),
    );
  });

  it('a dummy install keeps its random key across restarts, and replaces an unusable state file', () => {
    const clock = new ManualClock(T);
    const make = () =>
      new PhoneRelay({
        stateDir: dir,
        mode: { kind: 'dummy' },
        transport: offline,
        scheduler: new ManualScheduler(clock),
      });
    make();
    const first = JSON.parse(readFileSync(join(dir, DUMMY_FILE), 'utf8')).key as string;
    make();
    assert.equal(
      JSON.parse(readFileSync(join(dir, DUMMY_FILE), 'utf8')).key,
      first,
      'the same key',
    );
    assert.equal(statSync(join(dir, DUMMY_FILE)).mode & 0o077, 0, 'readable by its owner only');
    writeFileSync(join(dir, DUMMY_FILE), 'nonsense');
    const relay = make();
    assert.match(relay.status().problems[0] ?? '', /dummy state file was unusable; moved aside/);
    assert.match(JSON.parse(readFileSync(join(dir, DUMMY_FILE), 'utf8')).key, /^[0-9a-f]{64}$/);
  });
});
