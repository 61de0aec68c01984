import { Writable } from 'node:stream';
import { type Logger, createLogger } from '../../backend-kit/logger.js';

/** A real logger writing into memory, so tests can read every line a service logged. */
export function capturedLogger(name: string): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  return { log: createLogger({ name, level: 'debug', destination }), lines };
}
