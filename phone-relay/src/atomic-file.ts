import { randomBytes } from 'node:crypto';
import {
  closeSync,
  fsyncSync,
  openSync,
  readdirSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';

export interface AtomicWriteOptions {
  readonly mode?: number;
  /** Fault injection for tests: runs after the temporary file is complete, before the rename. */
  readonly beforeRename?: (tmpPath: string) => void;
}

const TMP_MARK = '.tmp-';

/**
 * Replace `path` with `data` so that a crash at any moment leaves either the old file or the new
 * one, never a mix: write a temporary file beside it, fsync it, rename it over the old one
 * (atomic on POSIX), then fsync the directory so the rename itself survives a power cut.
 */
export function writeFileAtomic(
  path: string,
  data: Uint8Array,
  options: AtomicWriteOptions = {},
): void {
  const tmp = `${path}${TMP_MARK}${process.pid}-${randomBytes(4).toString('hex')}`;
  const fd = openSync(tmp, 'wx', options.mode ?? 0o600);
  try {
    let at = 0;
    while (at < data.length) at += writeSync(fd, data, at, data.length - at);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    unlinkSync(tmp);
    throw err;
  }
  closeSync(fd);
  // A simulated crash here leaves the temporary file behind, as a real one would.
  options.beforeRename?.(tmp);
  try {
    renameSync(tmp, path);
  } catch (err) {
    unlinkSync(tmp);
    throw err;
  }
  fsyncDirectory(dirname(path));
}

function fsyncDirectory(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // Some file systems refuse to fsync a directory; the rename has still happened.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Remove temporary files a crash left beside `path`; returns how many. */
export function removeStaleTemporaries(path: string): number {
  const dir = dirname(path);
  const prefix = `${basename(path)}${TMP_MARK}`;
  let removed = 0;
  for (const name of readdirSync(dir)) {
    if (!name.startsWith(prefix)) continue;
    try {
      unlinkSync(join(dir, name));
      removed++;
    } catch {
      // Already gone.
    }
  }
  return removed;
}
