/**
 * Espruino's Storage library over an in-memory flash that outlives reboots and power loss
 * (espruino-facts.md §5). Writing inside an existing file can only clear bits, as on real flash.
 */
export class EmulatedFlash {
  readonly files = new Map<string, Uint8Array>();
  /** Every write and rewrite, so tests can bound flash wear. */
  writes = 0;
  rewrites = 0;

  constructor(readonly capacity = 40 * 1024) {}

  used(): number {
    let n = 0;
    for (const f of this.files.values()) n += f.length;
    return n;
  }
}

function toBytes(data: unknown): Uint8Array {
  if (typeof data === 'string') return Uint8Array.from(data, (c) => c.charCodeAt(0) & 0xff);
  if (data instanceof ArrayBuffer) return new Uint8Array(data.slice(0));
  if (ArrayBuffer.isView(data))
    return Uint8Array.from(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  if (Array.isArray(data)) return Uint8Array.from(data as number[], (v) => Number(v) & 0xff);
  return toBytes(JSON.stringify(data));
}

const binaryString = (bytes: Uint8Array): string => String.fromCharCode(...bytes);

/** The object `require("Storage")` returns on the emulated device. */
export function storageModule(flash: EmulatedFlash) {
  const checkName = (name: string) => {
    if (typeof name !== 'string' || name.length === 0 || name.length > 28)
      throw new Error('Invalid filename');
  };
  const read = (name: string, offset = 0, length = 0): string | undefined => {
    const f = flash.files.get(name);
    if (!f) return undefined;
    return binaryString(f.subarray(offset, length > 0 ? offset + length : undefined));
  };
  const write = (name: string, data: unknown, offset?: number, size?: number): boolean => {
    checkName(name);
    const bytes = toBytes(data);
    const existing = flash.files.get(name);
    if (offset === undefined || offset === 0 || !existing) {
      const length = size ?? bytes.length;
      if (bytes.length > length) throw new Error('Too much data for file size');
      if (flash.used() - (existing?.length ?? 0) + length > flash.capacity) return false;
      const file = new Uint8Array(length).fill(0xff);
      file.set(bytes, 0);
      if (existing) flash.rewrites++;
      flash.files.set(name, file);
    } else {
      if (offset + bytes.length > existing.length) throw new Error('Too much data for file size');
      // Flash programming only clears bits: a write over written bytes ANDs into them.
      for (let i = 0; i < bytes.length; i++)
        existing[offset + i] = (existing[offset + i] as number) & (bytes[i] as number);
    }
    flash.writes++;
    return true;
  };
  return {
    write,
    read,
    readArrayBuffer: (name: string) => flash.files.get(name)?.slice().buffer,
    readJSON(name: string, noExceptions: boolean): unknown {
      const s = read(name);
      if (s === undefined) return undefined;
      try {
        return JSON.parse(s);
      } catch (err) {
        if (noExceptions) return undefined;
        throw err;
      }
    },
    writeJSON: (name: string, data: unknown) => write(name, JSON.stringify(data)),
    erase(name: string): void {
      flash.files.delete(name);
    },
    list: () => [...flash.files.keys()],
    getFree: () => flash.capacity - flash.used(),
  };
}
