// Mocha's spec output plus one plain closing line ("N passed, N failed, N skipped") that CI reads.
// eslint-disable-next-line @typescript-eslint/no-require-imports -- mocha loads reporters with require()
import Mocha = require('mocha');

class SummaryReporter extends Mocha.reporters.Spec {
  constructor(runner: Mocha.Runner, options?: Mocha.MochaOptions) {
    super(runner, options);
    runner.once(Mocha.Runner.constants.EVENT_RUN_END, () => {
      const s = runner.stats ?? { passes: 0, failures: 0, pending: 0 };
      process.stdout.write(
        `\ntests: ${s.passes} passed, ${s.failures} failed, ${s.pending} skipped\n`,
      );
    });
  }
}

export = SummaryReporter;
