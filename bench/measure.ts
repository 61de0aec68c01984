import { cpus } from 'node:os';

/** Runs `fn` in a loop for about `ms` milliseconds and returns operations per second. */
export function opsPerSecond(fn: (i: number) => void, ms: number): number {
  let n = 0;
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(ms) * 1_000_000n;
  let now = start;
  while (now < deadline) {
    for (let k = 0; k < 256; k++) fn(n++);
    now = process.hrtime.bigint();
  }
  return n / (Number(now - start) / 1e9);
}

/** Operations per CPU-second of this process: fairer than wall time on a shared machine. */
export function opsPerCpuSecond(fn: (i: number) => void, ms: number): number {
  let n = 0;
  const cpu = process.cpuUsage();
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) for (let k = 0; k < 64; k++) fn(n++);
  const used = process.cpuUsage(cpu);
  return n / ((used.user + used.system) / 1e6);
}

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

export function machine(): string {
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  return `${cpus().length} × ${cpu}, Node ${process.version}, ${process.platform}/${process.arch}`;
}
