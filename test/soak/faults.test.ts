/**
 * The soak scenarios, short: both backends as real processes, 20 simulated people, a 10-second
 * window. Each scenario runs where it means something — on PGlite (the database inside the app
 * process) a SIGKILL aimed at a delivery the police stored but the app backend never heard of, and
 * the police backend down; on PostgreSQL a SIGKILL aimed at the delivery's record, the database's
 * connections cut, and two app backend instances. The long campaign is `node dist/test/soak/run.js`.
 */
import assert from 'node:assert/strict';
import { type Aim, type ScenarioResult, Scenarios } from './scenarios.js';
import { SoakSystem } from './system.js';
import { checkPresence } from './truth.js';

const PEOPLE = 20;

/** The promise every scenario keeps: each departure shown once, nothing shown for people at home. */
function assertAlertsExact(r: ScenarioResult): void {
  assert.ok(r.expected > 0, 'people left during the scenario');
  assert.equal(r.missing, 0, 'every departure reached the officers');
  assert.equal(r.delivered, r.expected);
  assert.equal(r.duplicates, 0, 'no departure shown twice');
  assert.equal(r.falseAlerts, 0, 'no alert for anyone at home');
  assert.ok(r.presenceAccepted > 0 && r.presenceChecked > 0, 'presence flowed and was checked');
}

const targets: { name: string; url: string | undefined; aims: Aim[] }[] = [
  { name: 'PGlite', url: undefined, aims: ['delivery'] },
];
if (process.env.DATABASE_URL)
  targets.push({ name: 'PostgreSQL', url: process.env.DATABASE_URL, aims: ['mark'] });

for (const target of targets) {
  describe(`soak, short: both backends as processes on ${target.name}`, function () {
    this.timeout(120_000);
    let system: SoakSystem;
    let scenarios: Scenarios;

    before(async () => {
      system = await SoakSystem.start({
        quarantines: PEOPLE,
        databaseUrl: target.url,
        windowSeconds: 10,
        graceSeconds: 0,
        uploadSeconds: 2,
        keepDir: process.env.SOAK_KEEP === '1',
      });
      let seed = 7;
      scenarios = new Scenarios(system, {
        leavers: 2,
        rounds: 1,
        aims: target.aims,
        policeDownSeconds: 0,
        databaseDownSeconds: 3,
        random: () => ((seed = (seed * 16807) % 2_147_483_647) - 1) / 2_147_483_646,
      });
    });
    after(async () => {
      await system?.close();
    });

    it(`SIGKILL aimed at a delivery (${target.aims.join(', ')}), restart: each departure shown once, none for people at home, no accepted presence lost`, async () => {
      const r = await scenarios.crashes();
      assertAlertsExact(r);
      // What the killed process had answered 202 for was in the journal and was taken over.
      assert.equal(r.presenceLost, 0);
      assert.equal(r.kills, 1);
      assert.deepEqual(Object.keys(r.aims), target.aims, 'the crash landed where it was aimed');
    });

    if (target.url === undefined) {
      it('police backend down past several delivery retries, then back: each departure shown once, no presence lost', async () => {
        const r = await scenarios.policeDown();
        assertAlertsExact(r);
        assert.equal(r.presenceLost, 0);
        assert.equal(r.restarts, 1);
      });
    } else {
      it('database connections cut twice (once aimed at the watchdog’s uncommitted alerts): each departure shown once', async () => {
        const r = await scenarios.databaseRestart();
        assertAlertsExact(r);
        assert.equal(r.cuts, 2);
      });

      it('two app backend instances on one database: each departure shown once, no presence lost', async () => {
        const r = await scenarios.twoInstances();
        assertAlertsExact(r);
        assert.equal(r.presenceLost, 0);
      });
    }

    it('the presence check finds accepted presence the app backend does not have', async () => {
      // A token the relay believes accepted, newer than anything the app backend was sent.
      const person = system.people.find((p) => p.leftAt === null);
      assert.ok(person);
      await system.relays.pause();
      try {
        await checkPresence(system); // everything accepted so far, settled
        // On PGlite the check proves presence by uploading, and those uploads (not validated yet)
        // are new targets: this test looks at one target alone.
        for (const p of system.people) p.unchecked = [];
        person.unchecked.push(Date.now() + 60_000);
        const check = await checkPresence(system, 0);
        assert.equal(check.lost, 1);
      } finally {
        system.relays.resume();
      }
    });

    it('over the whole run: nothing left undelivered, each departure shown once, none for people at home', async () => {
      const whole = await scenarios.final();
      assert.equal(whole.outboxLeft, 0, `left in the outbox: ${whole.outboxRows.join('; ')}`);
      assert.equal(whole.missing, 0);
      assert.equal(whole.duplicates, 0);
      assert.equal(whole.falseAlerts, 0);
    });
  });
}
