import { GATT_SERVICE_UUID, GATT_TOKEN_CHAR_UUID } from '../../protocol/frames/layout.js';
import { fromHex, toHex } from './bytes.js';
import {
  type BeaconConfig,
  CONFIG_FILE,
  LOCK_CODE,
  LOCK_FILE,
  MIN_VALID_TIME,
  type ProvisionError,
  isLocked,
  loadConfig,
  validateProvision,
} from './config.js';
import { type Counter, openCounter, takeCounter } from './counter.js';
import { advertisingPackets } from './frames.js';
import { hash } from './hmac.js';
import { type Air, onAir, watchButton } from './schedule.js';
import { type TokenKeys, deriveTokenKeys, hardwareIv, makeToken } from './token.js';

interface Running {
  config: BeaconConfig;
  keys: TokenKeys;
  counter: Counter;
  timer: number;
  air: Air;
}

let running: Running | undefined;
// Bit 1 of the flags: the first token after a boot says so.
let rebootedSinceLastToken = true;

/** Console answers are one line, "SB:" + JSON, so the provisioning tool can pick them out. */
function answer(result: object): void {
  print('SB:' + JSON.stringify(result));
}

function fail(error: ProvisionError): void {
  answer({ ok: false, error: error });
}

function battery(): number {
  if (!E.getBattery) return 0xff;
  const b = Math.round(E.getBattery());
  return b < 0 ? 0 : b > 100 ? 100 : b;
}

function gattServices(token: Uint8Array): Record<string, Record<string, GattCharacteristic>> {
  const services: Record<string, Record<string, GattCharacteristic>> = {};
  services[GATT_SERVICE_UUID] = {};
  (services[GATT_SERVICE_UUID] as Record<string, GattCharacteristic>)[GATT_TOKEN_CHAR_UUID] = {
    value: token,
    maxLen: 64,
    readable: true,
    description: 'SmartBeacon token',
  };
  return services;
}

/** Make the next token and put it on the air: four rotated advertisements and the GATT value. */
function emitToken(r: Running): Uint8Array {
  const flags = (getTime() < MIN_VALID_TIME ? 1 : 0) | (rebootedSinceLastToken ? 2 : 0);
  const token = makeToken(
    r.keys,
    hardwareIv(),
    Math.floor(getTime()) >>> 0,
    takeCounter(r.counter),
    battery(),
    flags,
  );
  rebootedSinceLastToken = false;
  r.air.packets = advertisingPackets(token, hash(token).subarray(0, 4));
  onAir(r.air, true);
  const update: Record<string, Record<string, { value: Uint8Array }>> = {};
  update[GATT_SERVICE_UUID] = {};
  (update[GATT_SERVICE_UUID] as Record<string, { value: Uint8Array }>)[GATT_TOKEN_CHAR_UUID] = {
    value: token,
  };
  NRF.updateServices(update);
  return token;
}

function tick(): void {
  // Kicked only here: if the token loop stalls, the watchdog restarts the beacon.
  E.kickWatchdog();
  if (running) emitToken(running);
}

function start(config: BeaconConfig): Running {
  const locked = isLocked();
  NRF.setTxPower(config.tx);
  NRF.setServices(gattServices(new Uint8Array(64)), { uart: !locked });
  E.enableWatchdog(Math.max(20, config.cadence * 2 + 10), false);
  const r: Running = {
    config: config,
    keys: deriveTokenKeys(fromHex(config.key, 32) as Uint8Array),
    counter: openCounter(),
    timer: setInterval(tick, config.cadence * 1000),
    air: {
      packets: [],
      open: !locked,
      interval: config.interval,
      // A configuration stored without it keeps advertising continuously, as it was provisioned.
      burst: typeof config.burst === 'number' ? config.burst : 0,
      timer: undefined,
    },
  };
  if (locked) watchButton(r.air);
  running = r;
  return r;
}

/** The one provisioning call: store ID, key and settings, set the clock, start, answer with a self-test token. */
function provision(input: unknown): void {
  if (isLocked()) return fail('LOCKED');
  if (running || loadConfig()) return fail('ALREADY_PROVISIONED');
  const checked = validateProvision(input);
  if ('error' in checked) return fail(checked.error);
  require('Storage').writeJSON(CONFIG_FILE, checked.config);
  setTime(checked.time);
  const r = start(checked.config);
  const token = emitToken(r);
  answer({ ok: true, id: checked.config.id, token: toHex(token) });
}

/** Lock for good: no console on any interface and no BLE UART, now and at every boot. */
function lock(): void {
  if (isLocked()) return fail('LOCKED');
  if (!running) return fail('NOT_PROVISIONED');
  require('Storage').write(LOCK_FILE, LOCK_CODE);
  answer({ ok: true, locked: true });
  const air = running.air;
  // Let the answer leave before the console goes away; from then on the officer cannot connect.
  setTimeout(function () {
    NRF.setServices(gattServices(new Uint8Array(64)), { uart: false });
    E.setConsole(null, { force: true });
    air.open = false;
    watchButton(air);
    onAir(air, true);
  }, 200);
}

/** Erase key and ID (the counter stays, so no value is ever reused), then restart unprovisioned. */
function wipe(): void {
  if (isLocked()) return fail('LOCKED');
  require('Storage').erase(CONFIG_FILE);
  if (running) clearInterval(running.timer);
  running = undefined;
  answer({ ok: true, wiped: true });
  setTimeout(function () {
    E.reboot();
  }, 200);
}

function status(): void {
  answer({
    ok: true,
    provisioned: running !== undefined,
    locked: isLocked(),
    id: running ? running.config.id : null,
    time: Math.floor(getTime()),
    clockSet: getTime() >= MIN_VALID_TIME,
    battery: battery(),
  });
}

/** Boot: resume broadcasting if provisioned, else wait for the provisioning call on the console. */
export function boot(): void {
  global.SB = { provision: provision, lock: lock, wipe: wipe, status: status };
  const config = loadConfig();
  if (config) emitToken(start(config));
}
