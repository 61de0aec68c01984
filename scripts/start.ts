/**
 * `npm start`: runs what exists of the system. Today that is the protocol: simulated beacons make
 * real v1 tokens every minute, advertise them as rotated BLE frames over a lossy, noisy radio, a
 * relay's reassembler rebuilds them and the verifier opens them with the freshness and replay
 * rules. One person leaves home partway through. Time is simulated, so it finishes at once.
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { tokenAdvertisements } from '../protocol/frames/check.js';
import { TokenReassembler } from '../protocol/frames/reassembler.js';
import { nodeSuite } from '../protocol/token/keys-node.js';
import { makeToken } from '../protocol/token/make.js';
import {
  DEFAULT_MAX_AGE_SECONDS,
  DEFAULT_MAX_SKEW_SECONDS,
  openToken,
} from '../protocol/token/open.js';

const HELP = `Usage: npm start -- [options]

  --beacons N     simulated beacons (default 5)
  --minutes N     simulated minutes (default 30)
  --loss P        share of advertisements the relay misses, 0–1 (default 0.6)
  --leave-at N    minute at which the last person leaves home (default 12; -1 for never)
  --help          this text
`;

const { values } = parseArgs({
  options: {
    beacons: { type: 'string', default: '5' },
    minutes: { type: 'string', default: '30' },
    loss: { type: 'string', default: '0.6' },
    'leave-at': { type: 'string', default: '12' },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  process.stdout.write(HELP);
  process.exit(0);
}
const beaconCount = Number(values.beacons);
const minutes = Number(values.minutes);
const loss = Number(values.loss);
const leaveAt = Number(values['leave-at']);
if (!(
  beaconCount >= 1 &&
  beaconCount <= 100 &&
  minutes >= 1 &&
  minutes <= 10_000 &&
  loss >= 0 &&
  loss < 1
)) {
  process.stderr.write(`invalid options\n\n${HELP}`);
  process.exit(2);
}

const REPEATS_PER_MINUTE = 30; // each frame advertised every 2 s (4 frames at a 500 ms interval)
const start = Math.floor(Date.now() / 1000);
const beacons = Array.from({ length: beaconCount }, (_, i) => ({
  id: `beacon-${String(i + 1).padStart(2, '0')}`,
  address: randomBytes(6).toString('hex'),
  keys: nodeSuite.importKeys(new Uint8Array(randomBytes(32))),
  counter: 0,
  lastCounter: undefined as number | undefined,
  lastPresence: start,
  heard: 0,
  accepted: 0,
  rejected: 0,
}));
const relay = new TokenReassembler();

for (let minute = 0; minute < minutes; minute++) {
  const now = start + minute * 60;
  for (const [i, b] of beacons.entries()) {
    const away = i === beaconCount - 1 && leaveAt >= 0 && minute >= leaveAt;
    const token = makeToken(b.keys, {
      unixSeconds: now,
      counter: b.counter++,
      batteryPercent: 90,
      clockNotSet: false,
      rebooted: false,
    });
    if (away) continue; // the relay is out of range: it hears nothing from this beacon
    const frames = tokenAdvertisements(token);
    for (let r = 0; r < REPEATS_PER_MINUTE; r++) {
      for (const frame of frames) {
        // Neighbouring BLE devices keep talking too.
        relay.push(randomBytes(6).toString('hex'), new Uint8Array(randomBytes(28)), now * 1000);
        if (Math.random() < loss) continue;
        b.heard++;
        const whole = relay.push(b.address, frame, (now + r * 2) * 1000);
        if (!whole) continue;
        const opened = openToken(whole, b.keys, {
          receivedAt: now + 60,
          maxAgeSeconds: DEFAULT_MAX_AGE_SECONDS,
          maxSkewSeconds: DEFAULT_MAX_SKEW_SECONDS,
          lastCounter: b.lastCounter,
        });
        if (opened.ok) {
          b.accepted++;
          b.lastCounter = opened.fields.counter;
          b.lastPresence = opened.fields.unixSeconds;
        } else b.rejected++;
      }
    }
  }
}

const end = start + minutes * 60;
console.log(
  `SmartBeacon protocol simulation: ${beaconCount} beacons, ${minutes} simulated minutes, ${Math.round(loss * 100)} % of advertisements missed\n`,
);
console.log('beacon      frames heard  tokens accepted  rejected  last presence  status');
for (const b of beacons) {
  const gap = end - b.lastPresence;
  const status =
    gap > DEFAULT_MAX_AGE_SECONDS
      ? `NO PRESENCE for ${Math.round(gap / 60)} min → alert`
      : 'present';
  console.log(
    `${b.id}  ${String(b.heard).padStart(12)}  ${String(b.accepted).padStart(15)}  ${String(b.rejected).padStart(8)}  ${`${Math.round(gap / 60)} min ago`.padStart(13)}  ${status}`,
  );
}
const s = relay.stats;
console.log(
  `\nrelay: ${s.frames} advertisements, ${s.notOurs} not ours, ${s.duplicate} duplicates, ${s.completed} tokens reassembled`,
);
console.log(
  'The backends, dashboard, relay and tools exist (README.md); running them all together from npm start comes next.',
);
