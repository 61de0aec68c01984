import { randomBytes } from 'node:crypto';
import { chmodSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bytesToHex, hexToBytes } from '../../protocol/bytes.js';
import { sealBeaconKey } from '../../protocol/sealed-key.js';
import { nodeSuite } from '../../protocol/token/keys-node.js';
import { authenticateToken } from '../../protocol/token/open.js';
import type { BeaconConsole } from './connection.js';
import type { PoliceClient } from './police-client.js';

export interface ProvisionRequest {
  readonly console: BeaconConsole;
  readonly police: PoliceClient;
  /** The health authority's public key (PEM): SK_BEACON is sealed to it and to nothing else. */
  readonly authorityPublicKey: string;
  readonly address: string;
  readonly caseRef: string;
  readonly outDir: string;
  readonly txPower?: number;
  readonly cadenceSeconds?: number;
  /** Ask the app backend to start monitoring right after registration. */
  readonly enable?: boolean;
  /** The officer confirmed the checks no tool can make (signal in every room, seal intact). */
  readonly manualChecksConfirmed: boolean;
  readonly now?: () => number;
  readonly progress?: (step: string, state: 'start' | 'done' | 'failed', detail?: string) => void;
}

export interface ProvisionResult {
  readonly beaconId: string;
  readonly sealedKeyFile: string;
  readonly selfTestCounter: number;
}

/** What the officer must check by hand: the tool cannot measure these. */
export const MANUAL_CHECKS = [
  'The beacon is fixed where the seal covers its battery and button, and the seal is intact.',
  "With the person's phone, the relay app shows the beacon in every room of the home.",
  'The relay app shows the last upload as successful (the phone is online).',
];

export class ProvisioningError extends Error {
  constructor(
    readonly step: string,
    message: string,
  ) {
    super(`${step}: ${message}`);
  }
}

/**
 * At the door: make ID and key, provision the beacon, check its self-test token, seal the key for
 * the health authority, register the beacon with the police backend, and only then lock it. Any
 * failure before the lock wipes the beacon and removes the sealed file: it can be provisioned again.
 */
export async function provisionBeacon(r: ProvisionRequest): Promise<ProvisionResult> {
  const now = r.now ?? Date.now;
  const progress = r.progress ?? (() => undefined);
  const beaconId = `SB-${randomBytes(4).toString('hex').toUpperCase()}`;
  const skBeacon = new Uint8Array(randomBytes(32));
  const sealedKeyFile = join(r.outDir, `${beaconId}.sealed-key.json`);
  let provisioned = false;
  let registered = false;

  const step = async <T>(name: string, run: () => Promise<T>): Promise<T> => {
    progress(name, 'start');
    try {
      const value = await run();
      progress(name, 'done');
      return value;
    } catch (err) {
      progress(name, 'failed', (err as Error).message);
      throw err instanceof ProvisioningError
        ? err
        : new ProvisioningError(name, (err as Error).message);
    }
  };

  try {
    if (!r.manualChecksConfirmed)
      throw new ProvisioningError('manual checks', 'not confirmed by the officer');
    await step('check the beacon is blank', async () => {
      const s = await r.console.call('SB.status()');
      if (s.locked) throw new Error('the beacon is locked: factory-reset and re-flash it first');
      if (s.provisioned)
        throw new Error('the beacon is already provisioned: run SB.wipe() on it first');
    });
    const selfTest = await step('provision the beacon', async () => {
      const request = {
        id: beaconId,
        key: bytesToHex(skBeacon),
        time: Math.floor(now() / 1000),
        tx: r.txPower ?? 0,
        cadence: r.cadenceSeconds ?? 60,
      };
      const answer = await r.console.call(`SB.provision(${JSON.stringify(request)})`);
      if (answer.ok !== true) throw new Error(`the beacon refused: ${String(answer.error)}`);
      provisioned = true;
      return String(answer.token);
    });
    const counter = await step('verify the self-test token', async () => {
      const opened = authenticateToken(hexToBytes(selfTest), nodeSuite.importKeys(skBeacon));
      if (!opened.ok)
        throw new Error(`the token does not verify (${opened.reason}): wrong key or faulty beacon`);
      if (Math.abs(opened.fields.unixSeconds - now() / 1000) > 5)
        throw new Error('the beacon clock is off by more than 5 s');
      if (opened.fields.clockNotSet) throw new Error('the beacon says its clock is not set');
      return opened.fields.counter;
    });
    await step('seal the key for the health authority', async () => {
      const sealed = sealBeaconKey(r.authorityPublicKey, beaconId, skBeacon);
      writeFileSync(sealedKeyFile, JSON.stringify(sealed, null, 2) + '\n', {
        mode: 0o600,
        flag: 'wx',
      });
      chmodSync(sealedKeyFile, 0o600);
    });
    await step('register the beacon with the police backend', async () => {
      await r.police.post('/api/beacons', { beaconId, address: r.address, caseRef: r.caseRef });
      registered = true;
    });
    if (r.enable !== false) {
      await step('request monitoring', () => r.police.post(`/api/beacons/${beaconId}/enable`, {}));
    }
    await step('lock the beacon', async () => {
      const answer = await r.console.call('SB.lock()');
      if (answer.ok !== true)
        throw new Error(`the beacon refused to lock: ${String(answer.error)}`);
    });
    return { beaconId, sealedKeyFile, selfTestCounter: counter };
  } catch (err) {
    // Leave nothing half-done: the beacon blank again and no sealed key for a beacon that is not in service.
    rmSync(sealedKeyFile, { force: true });
    if (provisioned) await r.console.call('SB.wipe()').catch(() => undefined);
    if (registered) await r.police.post(`/api/beacons/${beaconId}/end`, {}).catch(() => undefined);
    throw err;
  } finally {
    skBeacon.fill(0);
  }
}
