import { readUint32BE, writeUint32BE } from './bytes.js';

// The token counter must rise across reboots and power loss without wearing out flash. The file
// holds a 4-byte base and MARKS bytes that start as 0xFF; reserving the next block of BLOCK values
// clears one mark (flash can clear bits without an erase). One tiny write per BLOCK tokens (~17 h
// at one a minute); the file is rewritten only every MARKS blocks (~45 days).
export const COUNTER_FILE = 'sb.ctr';
export const COUNTER_MARKS = 64;
export const COUNTER_BLOCK = 1024;

export interface Counter {
  next: number;
  limit: number;
}

/** Reserve a fresh block, persisting the reservation before any value of it is used. */
function reserveBlock(): number {
  const storage = require('Storage');
  const raw = storage.readArrayBuffer(COUNTER_FILE);
  const bytes = raw ? new Uint8Array(raw) : undefined;
  let base = bytes && bytes.length === 4 + COUNTER_MARKS ? readUint32BE(bytes, 0) : 0;
  let used = 0;
  if (bytes && bytes.length === 4 + COUNTER_MARKS) {
    while (used < COUNTER_MARKS && bytes[4 + used] !== 0xff) used++;
  }
  if (!bytes || used === COUNTER_MARKS) {
    base = bytes ? base + COUNTER_MARKS * COUNTER_BLOCK : 0;
    const header = new Uint8Array(4);
    writeUint32BE(header, 0, base);
    storage.write(COUNTER_FILE, header, 0, 4 + COUNTER_MARKS);
    used = 0;
  }
  storage.write(COUNTER_FILE, [0], 4 + used);
  return base + used * COUNTER_BLOCK;
}

/** At boot: skip whatever was left of the last block, so no value is ever used twice. */
export function openCounter(): Counter {
  const start = reserveBlock();
  return { next: start, limit: start + COUNTER_BLOCK };
}

export function takeCounter(counter: Counter): number {
  if (counter.next >= counter.limit) {
    const start = reserveBlock();
    counter.next = start;
    counter.limit = start + COUNTER_BLOCK;
  }
  const value = counter.next;
  counter.next = value + 1;
  return value;
}
