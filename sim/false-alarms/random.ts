// A small seeded generator, so a run is repeatable from its seed and one person's draws do not
// depend on how many another made (each person gets its own stream).

export interface Random {
  /** Uniform in [0, 1). */
  next(): number;
}

/** mulberry32: 32-bit state, fast, good enough for simulation (not for keys). */
export function seeded(seed: number): Random {
  let a = seed >>> 0;
  return {
    next() {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    },
  };
}

export const chance = (r: Random, p: number): boolean => r.next() < p;

export const uniform = (r: Random, lo: number, hi: number): number => lo + (hi - lo) * r.next();

/** Standard normal by Box–Muller. */
export function normal(r: Random): number {
  const u = 1 - r.next();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r.next());
}

/** Log-normal given its median and the σ of its logarithm. */
export const logNormal = (r: Random, median: number, sigma: number): number =>
  median * Math.exp(sigma * normal(r));

/** Event times of a Poisson process with `ratePerDay` over [from, to), ms. */
export function poisson(r: Random, ratePerDay: number, from: number, to: number): number[] {
  const out: number[] = [];
  if (ratePerDay <= 0) return out;
  const meanGap = 86_400_000 / ratePerDay;
  for (
    let t = from - meanGap * Math.log(1 - r.next());
    t < to;
    t -= meanGap * Math.log(1 - r.next())
  )
    out.push(t);
  return out;
}
