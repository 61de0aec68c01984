import assert from 'node:assert/strict';
import fc from 'fast-check';
import { kolmogorovSurvival, ksPValue, ksStatistic, ksTest } from './ks.js';

/** D by its definition: both empirical distribution functions evaluated at every sample point. */
function definitionD(a: readonly number[], b: readonly number[]): number {
  const cdf = (s: readonly number[], x: number) => s.filter((v) => v <= x).length / s.length;
  return Math.max(...[...a, ...b].map((x) => Math.abs(cdf(a, x) - cdf(b, x))));
}

describe('two-sample Kolmogorov–Smirnov', () => {
  it('gives D = 0 for identical samples and D = 1 for disjoint ones', () => {
    assert.equal(ksStatistic([3, 1, 2, 4], [4, 2, 3, 1]), 0);
    assert.equal(ksStatistic([1, 2, 3], [4, 5, 6]), 1);
    assert.equal(ksStatistic([4, 5, 6], [1, 2, 3]), 1);
  });

  it('steps over ties together', () => {
    // F_a(1) = 1/2, F_b(1) = 1/4; both reach 1 at 2.
    assert.equal(ksStatistic([1, 1, 2, 2], [1, 2, 2, 2]), 0.25);
    assert.equal(ksStatistic([5, 5, 5], [5, 5]), 0);
  });

  it('matches the definition on random samples with ties, symmetric in its arguments', () => {
    const sample = fc.array(fc.integer({ min: 0, max: 20 }), { minLength: 1, maxLength: 40 });
    fc.assert(
      fc.property(sample, sample, (a, b) => {
        const d = ksStatistic(a, b);
        assert.ok(Math.abs(d - definitionD(a, b)) < 1e-12);
        assert.equal(d, ksStatistic(b, a));
      }),
      { numRuns: 300 },
    );
  });

  it('reproduces the Kolmogorov distribution’s tabled tail probabilities', () => {
    // P(K > λ) as SciPy's scipy.special.kolmogorov gives it, around the 10 %, 5 % and 1 % critical values.
    for (const [lambda, q] of [
      [0.5, 0.9639452436648751],
      [1.0, 0.26999967167735456],
      [1.18, 0.1234538094297657],
      [1.224, 0.09992557750630869],
      [1.358, 0.05002679733444698],
      [1.628, 0.009975522431181053],
    ] as const)
      assert.ok(Math.abs(kolmogorovSurvival(lambda) - q) < 1e-9, `Q(${lambda})`);
    // Both forms agree where they meet.
    const below = kolmogorovSurvival(1.18 - 1e-9);
    const above = kolmogorovSurvival(1.18);
    assert.ok(Math.abs(below - above) < 1e-9);
    assert.equal(kolmogorovSurvival(0), 1);
    assert.ok(kolmogorovSurvival(10) < 1e-80);
  });

  it('turns D into a p-value that falls as samples grow', () => {
    assert.ok(ksPValue(0.1, 100, 100) > 0.5);
    assert.ok(ksPValue(0.1, 2000, 2000) < 1e-6);
    const r = ksTest([1, 2, 3, 4, 5], [1, 2, 3, 4, 5]);
    assert.deepEqual(r, { d: 0, p: 1, n: 5, m: 5 });
    assert.throws(() => ksStatistic([], [1]), RangeError);
  });
});
