import assert from 'node:assert/strict';
import { BOARDS } from '../scripts/boards.js';
import { buildBoard } from '../scripts/build.js';
import { BURST_INTERVAL, REST_INTERVAL } from '../src/intervals.js';
import {
  type Beacon,
  answers,
  newBeacon,
  provision,
  tokenOnAir,
  verify,
} from './beacon-harness.js';

const SECOND = 1000;
/** The test double presses BTN this long after the firmware starts watching it. */
const PRESS_AFTER = 30 * SECOND;

/**
 * The emulation has no pins: this boot file (it runs before the firmware, as .boot1 would) gives
 * it a BTN and a setWatch that presses the button once, PRESS_AFTER after the watch is set.
 */
const BUTTON = `var BTN={};var watches=0;function setWatch(f,pin,o){watches++;if(pin===BTN&&o&&o.repeat&&o.edge==='rising')setTimeout(f,${PRESS_AFTER});return watches;}`;

function locked(b: Beacon): void {
  assert.deepEqual(answers(b.device.console('SB.lock()')), [{ ok: true, locked: true }]);
  b.clock.advance(SECOND); // the lock applies 200 ms after its answer
}

/** What the radio does now: interval, connectable, and whether a verifying token is on the air. */
function air(b: Beacon) {
  const token = tokenOnAir(b);
  return {
    interval: b.device.radio.intervalMs,
    connectable: b.device.radio.connectable,
    token: token !== null && verify(b, token).ok,
  };
}

describe('advertising schedule (compiled bundle in the Espruino emulation)', function () {
  this.timeout(120_000);

  before(async () => {
    for (const board of BOARDS) await buildBoard(board);
  });

  it('before lock: connectable and continuous at the configured interval, so the officer can connect', () => {
    const b = newBeacon();
    provision(b, { interval: 500, burst: 10 });
    for (let s = 0; s < 70; s += 5) {
      assert.deepEqual(air(b), { interval: 500, connectable: true, token: true }, `at ${s} s`);
      b.clock.advance(5 * SECOND);
    }
  });

  it('after lock: non-connectable, a burst at the start of every token period, then the rest interval', () => {
    const b = newBeacon();
    provision(b, { cadence: 60, burst: 13 });
    locked(b);
    assert.deepEqual(air(b), { interval: BURST_INTERVAL, connectable: false, token: true });
    b.clock.advance(13 * SECOND);
    assert.deepEqual(air(b), { interval: REST_INTERVAL, connectable: false, token: true });
    const lockedAt = b.clock.now() - 14 * SECOND;
    // Each new token (every 60 s from provisioning) starts its own burst.
    for (let token = 1; token <= 3; token++) {
      const due = lockedAt + token * 60 * SECOND;
      b.clock.advance(due - b.clock.now() + 100);
      const counter = verifiedCounter(b);
      assert.deepEqual(air(b), { interval: BURST_INTERVAL, connectable: false, token: true });
      b.clock.advance(12.8 * SECOND);
      assert.equal(b.device.radio.intervalMs, BURST_INTERVAL, 'still in the burst at 12.9 s');
      b.clock.advance(0.2 * SECOND);
      assert.deepEqual(air(b), { interval: REST_INTERVAL, connectable: false, token: true });
      assert.equal(verifiedCounter(b), counter, 'the rest carries the same token');
    }
  });

  it('after lock with burst 0: non-connectable and continuous at the configured interval', () => {
    const b = newBeacon();
    provision(b, { interval: 400, burst: 0 });
    locked(b);
    for (let s = 0; s < 130; s += 10) {
      assert.deepEqual(air(b), { interval: 400, connectable: false, token: true }, `at ${s} s`);
      b.clock.advance(10 * SECOND);
    }
  });

  it('keeps the locked schedule after a reboot', () => {
    const b = newBeacon();
    provision(b, { burst: 13 });
    locked(b);
    b.device.reset('test');
    assert.deepEqual(air(b), { interval: BURST_INTERVAL, connectable: false, token: true });
    b.clock.advance(13 * SECOND + 100);
    assert.deepEqual(air(b), { interval: REST_INTERVAL, connectable: false, token: true });
  });

  it('defaults to a 14-s burst, shortened to the token period, and refuses a burst longer than it', () => {
    const b = newBeacon();
    provision(b, { cadence: 60 });
    assert.equal(storedConfig(b).burst, 14);
    const short = newBeacon();
    provision(short, { cadence: 5 });
    assert.equal(storedConfig(short).burst, 5);
    for (const burst of [61, -1, 1.5, '13', null]) {
      const c = newBeacon();
      assert.deepEqual(provision(c, { cadence: 60, burst }), { ok: false, error: 'BAD_BURST' });
      assert.equal(c.device.flash.files.has('sb.cfg'), false);
    }
  });

  it('a configuration stored without a burst keeps advertising continuously after lock', () => {
    const b = newBeacon();
    provision(b, { interval: 375 });
    const stored = storedConfig(b);
    delete stored.burst;
    b.device.flash.files.set('sb.cfg', Buffer.from(JSON.stringify(stored)));
    locked(b);
    b.device.reset('test');
    b.clock.advance(30 * SECOND);
    assert.deepEqual(air(b), { interval: 375, connectable: false, token: true });
  });

  describe('with a button (test double in .boot1)', () => {
    function withButton(): Beacon {
      const b = newBeacon();
      b.device.install(BUTTON, '.boot1');
      return b;
    }

    it('watches the button only once locked', () => {
      const b = withButton();
      provision(b);
      assert.deepEqual(b.device.console('print(watches)'), ['0']);
      b.clock.advance(2 * PRESS_AFTER);
      assert.equal(b.device.radio.intervalMs, 375, 'no press handled before lock');
    });

    it('a press makes a locked beacon connectable at the configured interval for 2 minutes, then the schedule resumes', () => {
      const b = withButton();
      provision(b, { burst: 13 });
      locked(b);
      // The watch was set 200 ms after the lock call; the double presses PRESS_AFTER later.
      b.clock.advance(PRESS_AFTER - 800 - 100);
      assert.equal(b.device.radio.connectable, false);
      b.clock.advance(200);
      assert.deepEqual(air(b), { interval: 375, connectable: true, token: true });
      b.clock.advance(60 * SECOND);
      assert.deepEqual(
        air(b),
        { interval: 375, connectable: true, token: true },
        'a new token, still open',
      );
      b.clock.advance(60 * SECOND - 200);
      assert.equal(b.device.radio.connectable, true);
      b.clock.advance(400);
      const after = air(b);
      assert.equal(after.connectable, false, 'closed after 120 s');
      assert.ok(after.token);
      assert.ok(
        after.interval === BURST_INTERVAL || after.interval === REST_INTERVAL,
        `back on the locked schedule, not ${after.interval} ms`,
      );
    });
  });
});

function verifiedCounter(b: Beacon): number {
  const token = tokenOnAir(b);
  assert.ok(token, 'no complete token on the air');
  const opened = verify(b, token);
  assert.ok(opened.ok);
  return opened.fields.counter;
}

function storedConfig(b: Beacon): Record<string, unknown> {
  return JSON.parse(Buffer.from(b.device.flash.files.get('sb.cfg') ?? []).toString()) as Record<
    string,
    unknown
  >;
}
