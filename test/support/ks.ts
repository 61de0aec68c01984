/**
 * Two-sample Kolmogorov–Smirnov test: the statistic D (largest gap between the two empirical
 * distribution functions) and its asymptotic p-value, for comparing dummy and real presence traffic.
 */

export interface KsResult {
  readonly d: number;
  readonly p: number;
  readonly n: number;
  readonly m: number;
}

/** D = sup |F_a(x) − F_b(x)|, stepping over tied values together so ties never inflate D. */
export function ksStatistic(a: readonly number[], b: readonly number[]): number {
  if (!a.length || !b.length) throw new RangeError('both samples must be non-empty');
  const x = Float64Array.from(a).sort();
  const y = Float64Array.from(b).sort();
  let i = 0;
  let j = 0;
  let d = 0;
  while (i < x.length && j < y.length) {
    const v = Math.min(x[i] as number, y[j] as number);
    while (i < x.length && (x[i] as number) <= v) i++;
    while (j < y.length && (y[j] as number) <= v) j++;
    d = Math.max(d, Math.abs(i / x.length - j / y.length));
  }
  return d;
}

/**
 * Q_KS(λ) = P(K > λ) for the Kolmogorov distribution K: the alternating series for large λ,
 * the Jacobi-theta form (which converges fast where the series does not) for small λ.
 */
export function kolmogorovSurvival(lambda: number): number {
  if (!(lambda > 0)) return 1;
  if (lambda < 1.18) {
    // P(K ≤ λ) = √(2π)/λ · Σ_{k≥1} exp(−(2k−1)²π²/(8λ²))
    const w = (Math.PI * Math.PI) / (8 * lambda * lambda);
    let cdf = 0;
    for (let k = 1; k <= 20; k++) cdf += Math.exp(-((2 * k - 1) ** 2) * w);
    return Math.min(1, Math.max(0, 1 - (Math.sqrt(2 * Math.PI) / lambda) * cdf));
  }
  // P(K > λ) = 2 Σ_{k≥1} (−1)^{k−1} exp(−2k²λ²)
  let q = 0;
  for (let k = 1; k <= 20; k++) q += 2 * (-1) ** (k - 1) * Math.exp(-2 * k * k * lambda * lambda);
  return Math.min(1, Math.max(0, q));
}

/** Asymptotic p-value of D for samples of n and m, with Stephens' small-sample correction. */
export function ksPValue(d: number, n: number, m: number): number {
  const ne = Math.sqrt((n * m) / (n + m));
  return kolmogorovSurvival((ne + 0.12 + 0.11 / ne) * d);
}

export function ksTest(a: readonly number[], b: readonly number[]): KsResult {
  const d = ksStatistic(a, b);
  return { d, p: ksPValue(d, a.length, b.length), n: a.length, m: b.length };
}

/** The KS critical value at significance alpha for samples of n and m. */
export function ksCritical(n: number, m: number, alpha: number): number {
  const c = Math.sqrt(-0.5 * Math.log(alpha / 2));
  return c * Math.sqrt((n + m) / (n * m));
}
