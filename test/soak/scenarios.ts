/**
 * The fault scenarios. Each sends a fresh group of people away from home (their relays go on,
 * hearing no beacon), injects its fault while their alerts are being decided and delivered, then
 * checks the ground truth: each departure shown to officers exactly once, no alert for anyone at
 * home, no accepted presence lost.
 */
import { join } from 'node:path';
import { openDatabase } from '../../backend-kit/db.js';
import type { Person } from './people.js';
import type { SoakSystem } from './system.js';
import { type AlertCounts, checkPresence, countAlerts, tally, waitForAlerts } from './truth.js';

export type Aim = 'random' | 'validation' | 'watchdog' | 'delivery' | 'mark';

export interface ScenarioResult extends AlertCounts {
  readonly name: string;
  readonly database: string;
  /** Why the scenario did not run on this database, if it did not. */
  readonly skipped?: string;
  /** Requests with tokens answered 202 / tokens in them / requests refused or failed (retried by the relay). */
  readonly presenceAccepted: number;
  readonly tokensAccepted: number;
  readonly presenceFailed: number;
  /** Accepted requests checked against the app backend's proof of presence, and those missing from it. */
  readonly presenceChecked: number;
  readonly presenceLost: number;
  readonly kills: number;
  readonly restarts: number;
  readonly cuts: number;
  /** Immediate restarts (crash recovery) of the app backend's private PostgreSQL cluster. */
  readonly databaseRestarts: number;
  /** Backend exits nobody caused (a crash of its own), each restarted as systemd would. */
  readonly unplannedExits: number;
  /** Where each crash landed (the aim reached, or random). */
  readonly aims: Partial<Record<string, number>>;
  /** Police back up → last alert shown (scenario 2). */
  readonly recoverySeconds?: number;
  readonly seconds: number;
}

export interface ScenarioOptions {
  /** People leaving per round. */
  readonly leavers: number;
  /** Crash rounds (scenario 1). */
  readonly rounds: number;
  readonly policeDownSeconds: number;
  readonly databaseDownSeconds: number;
  /** The crash aims of scenario 1, in turn (default: every aim the database allows). */
  readonly aims?: readonly Aim[];
  /** Random draws (crash moments); seeded by the caller for a repeatable run. */
  readonly random: () => number;
  readonly say?: (line: string) => void;
}

/** What a fault reports back. */
interface FaultReport {
  databaseRestarts: number;
  kills: number;
  restarts: number;
  cuts: number;
  aims: Partial<Record<string, number>>;
  checked: number;
  lost: number;
  recoverySeconds?: number;
}

const emptyReport = (): FaultReport => ({
  databaseRestarts: 0,
  kills: 0,
  restarts: 0,
  cuts: 0,
  aims: {},
  checked: 0,
  lost: 0,
});

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** SQL each aim waits for on the app backend's database connection. */
const AIM_SQL: Record<Exclude<Aim, 'random' | 'delivery'>, string> = {
  // The validator's batch write (store.ts saveStates), inside its transaction.
  validation: 'UPDATE quarantines q SET',
  // The watchdog's confirmations: alerts and outbox rows written, not yet committed.
  watchdog: 'INSERT INTO outbox',
  // Delivery's results: the police stored the alerts, the outbox does not know yet.
  mark: 'UPDATE outbox o SET',
};

export class Scenarios {
  readonly results: ScenarioResult[] = [];
  readonly leavers: Person[] = [];
  #pool: Person[];

  constructor(
    readonly system: SoakSystem,
    readonly o: ScenarioOptions,
  ) {
    // Who leaves is drawn in advance, spread over the population.
    this.#pool = [...system.people].sort(() => o.random() - 0.5);
  }

  get #ruleMs(): number {
    const { windowSeconds, graceSeconds } = this.system.options;
    return (windowSeconds + graceSeconds) * 1000;
  }

  #unplannedExits(): number {
    const { app, app2, police } = this.system;
    return app.crashes + (app2?.crashes ?? 0) + police.crashes;
  }

  #say(line: string): void {
    this.o.say?.(line);
  }

  /** The next `n` people at home leave now. */
  #leave(n: number): Person[] {
    const group = this.#pool.splice(0, n);
    const now = Date.now();
    for (const p of group) p.leftAt = now;
    this.leavers.push(...group);
    return group;
  }

  /** Crash the app backend now (SIGKILL), then restart it; presence is checked while relays wait. */
  async #crashAndRestart(report: FaultReport, aim: string): Promise<void> {
    const { app, relays } = this.system;
    await app.kill();
    report.kills++;
    report.aims[aim] = (report.aims[aim] ?? 0) + 1;
    await relays.pause();
    await app.start();
    report.restarts++;
    // What the killed process had accepted is in the journal, taken over by the restart as it
    // starts (it serves on the dead one's port); the settling time is a margin, not a wait.
    const check = await checkPresence(this.system);
    this.#say(`  SIGKILL (${aim}): accepted presence checked ${check.checked}, lost ${check.lost}`);
    report.checked += check.checked;
    report.lost += check.lost;
    relays.resume();
  }

  /** Arm `aim`; crash when it is reached or, failing that, at `fallbackMs`. Returns where it landed. */
  async #aimedCrash(aim: Aim, fallbackMs: number, report: FaultReport): Promise<void> {
    const { dbProxy, link } = this.system;
    let reached: () => void = () => undefined;
    const hit = new Promise<boolean>((resolve) => (reached = () => resolve(true)));
    if (aim === 'delivery') {
      link.onNextAnswer(async () => reached());
    } else if (aim !== 'random' && dbProxy) {
      const sql = Buffer.from(AIM_SQL[aim]);
      dbProxy.tap((chunk) => {
        if (!chunk.includes(sql)) return 'pass';
        dbProxy.tap(undefined);
        reached();
        return 'hold';
      });
    }
    const landed = await Promise.race([hit, delay(fallbackMs).then(() => false)]);
    link.onNextAnswer(undefined);
    dbProxy?.tap(undefined);
    await this.#crashAndRestart(
      report,
      landed || aim === 'random' ? aim : `random (${aim} not reached)`,
    );
  }

  /** Run one scenario: `fault` runs while `group`'s alerts are decided and delivered. */
  async #run(
    name: string,
    leave: number,
    fault: (group: Person[], report: FaultReport) => Promise<void>,
    extraMs: number,
  ): Promise<ScenarioResult> {
    const t = Date.now();
    const before = { ...this.system.relays.counts };
    const exitsBefore = this.#unplannedExits();
    const from = Date.now();
    const report = emptyReport();
    const groups: Person[] = [];
    await fault((groups.push(...this.#leave(leave)), groups), report);
    const left = this.leavers.filter((p) => (p.leftAt ?? 0) >= from);
    await waitForAlerts(this.system, from, left, Date.now() + this.#ruleMs + extraMs);
    await this.system.app.up();
    await this.system.relays.pause();
    const check = await checkPresence(this.system);
    this.system.relays.resume();
    const counts = await countAlerts(this.system, from, left);
    const after = this.system.relays.counts;
    const result: ScenarioResult = {
      name,
      database: this.system.database,
      ...counts,
      presenceAccepted: after.accepted - before.accepted,
      tokensAccepted: after.tokensAccepted - before.tokensAccepted,
      presenceFailed: after.failed - before.failed,
      presenceChecked: report.checked + check.checked,
      presenceLost: report.lost + check.lost,
      kills: report.kills,
      restarts: report.restarts,
      cuts: report.cuts,
      databaseRestarts: report.databaseRestarts,
      unplannedExits: this.#unplannedExits() - exitsBefore,
      aims: report.aims,
      ...(report.recoverySeconds !== undefined ? { recoverySeconds: report.recoverySeconds } : {}),
      seconds: Math.round((Date.now() - t) / 100) / 10,
    };
    this.results.push(result);
    this.#say(format(result));
    return result;
  }

  #skip(name: string, reason: string): ScenarioResult {
    const result: ScenarioResult = {
      name,
      database: this.system.database,
      skipped: reason,
      expected: 0,
      delivered: 0,
      duplicates: 0,
      falseAlerts: 0,
      missing: 0,
      presenceAccepted: 0,
      tokensAccepted: 0,
      presenceFailed: 0,
      presenceChecked: 0,
      presenceLost: 0,
      kills: 0,
      restarts: 0,
      cuts: 0,
      databaseRestarts: 0,
      unplannedExits: 0,
      aims: {},
      seconds: 0,
    };
    this.results.push(result);
    this.#say(`${name}: skipped — ${reason}`);
    return result;
  }

  /**
   * 1. SIGKILL the app backend, round after round: each round a group leaves and one crash is
   * aimed — mid-validation batch, mid-watchdog batch, after the police stored a delivery but
   * before the app backend heard so, before it recorded the delivery — or at a random moment.
   * Aims at SQL need PostgreSQL's wire protocol; on PGlite the crashes are aimed at deliveries
   * and at random moments.
   */
  crashes(): Promise<ScenarioResult> {
    const aims: readonly Aim[] =
      this.o.aims ??
      (this.system.dbProxy
        ? ['validation', 'watchdog', 'delivery', 'mark', 'random']
        : ['delivery', 'random']);
    const rounds = this.o.rounds;
    return this.#run(
      'app backend SIGKILLed and restarted',
      this.o.leavers,
      async (group, report) => {
        for (let round = 0; round < rounds; round++) {
          const aim = aims[round % aims.length] as Aim;
          const wave = round === 0 ? group : this.#leave(this.o.leavers);
          const from = Math.min(...wave.map((p) => p.leftAt ?? Date.now()));
          const fallback =
            aim === 'random' ? Math.floor(this.o.random() * this.#ruleMs) : this.#ruleMs + 15_000;
          await this.#aimedCrash(aim, fallback, report);
          // Each round's departures are through before the next round's crash is aimed.
          await waitForAlerts(this.system, from, wave, Date.now() + this.#ruleMs + 45_000);
        }
      },
      15_000,
    );
  }

  /** 2. The police backend down for a long stretch (many delivery retries), then back. */
  policeDown(): Promise<ScenarioResult> {
    // At least until the departures' alerts have failed to go out a few times.
    const downMs = Math.max(this.o.policeDownSeconds * 1000, this.#ruleMs + 3_000);
    return this.#run(
      `police backend down ${Math.round(downMs / 1000)} s`,
      this.o.leavers,
      async (_group, report) => {
        await this.system.police.kill();
        report.kills++;
        await delay(downMs);
        await this.system.police.start();
        report.restarts++;
        const upAt = Date.now();
        const from = upAt - downMs - 1000;
        const last = await waitForAlerts(
          this.system,
          from,
          this.leavers.filter((p) => (p.leftAt ?? 0) >= from),
          upAt + 10 * 60_000,
        );
        if (last !== null) report.recoverySeconds = Math.max(0, (last - upAt) / 1000);
      },
      10 * 60_000,
    );
  }

  /**
   * 3. The database restarts. PostgreSQL: the proxy drops every connection of the app backend
   * and refuses new ones for a stretch — once at a random moment, once aimed at the watchdog's
   * uncommitted confirmations. PGlite lives inside the app process: its restart is the process's
   * (SIGKILL, the data directory reopened from disk), once at a random moment.
   */
  databaseRestart(): Promise<ScenarioResult> {
    const proxy = this.system.dbProxy;
    const downMs = this.o.databaseDownSeconds * 1000;
    if (!proxy)
      return this.#run(
        'database restarted with its process (PGlite, SIGKILL)',
        this.o.leavers,
        async (_group, report) => {
          await delay(Math.floor(this.o.random() * this.#ruleMs));
          await this.#crashAndRestart(report, 'random');
        },
        15_000,
      );
    return this.#run(
      `database connections cut, refused ${Math.round(downMs / 1000)} s`,
      this.o.leavers,
      async (_group, report) => {
        await delay(Math.floor(this.o.random() * this.#ruleMs * 0.5));
        proxy.cut(downMs);
        report.cuts++;
        report.aims.random = (report.aims.random ?? 0) + 1;
        await delay(downMs);
        let reached: () => void = () => undefined;
        const hit = new Promise<boolean>((resolve) => (reached = () => resolve(true)));
        const sql = Buffer.from(AIM_SQL.watchdog);
        proxy.tap((chunk) => {
          if (!chunk.includes(sql)) return 'pass';
          proxy.tap(undefined);
          reached();
          // Held, then dropped with the cut: the transaction never commits.
          return 'hold';
        });
        const landed = await Promise.race([hit, delay(this.#ruleMs + 15_000).then(() => false)]);
        proxy.tap(undefined);
        proxy.cut(downMs);
        report.cuts++;
        const aim = landed ? 'watchdog' : 'random (watchdog not reached)';
        report.aims[aim] = (report.aims[aim] ?? 0) + 1;
        await delay(downMs);
        const cluster = this.system.cluster;
        if (cluster) {
          // The server itself: every backend killed without a checkpoint, then crash recovery.
          await delay(Math.floor(this.o.random() * this.#ruleMs * 0.5));
          await cluster.restart();
          report.databaseRestarts++;
        }
      },
      30_000,
    );
  }

  /** 4. Two app backend instances on one database, each with half the relays, both delivering. */
  twoInstances(): Promise<ScenarioResult> {
    const second = this.system.app2;
    if (!second)
      return Promise.resolve(
        this.#skip(
          'two app backend instances',
          'PGlite is an embedded single-process database: two processes cannot open one data directory',
        ),
      );
    return this.#run(
      'two app backend instances on one database',
      this.o.leavers * 2,
      async (_group, report) => {
        await second.start();
        report.restarts++;
        // Half the people upload to the second instance from now on.
        this.system.secondInstanceFor = (p) => p.index % 2 === 1;
        // Both run until this group's alerts are through; then the second stops cleanly.
        const from = Date.now() - 1000;
        await waitForAlerts(
          this.system,
          from,
          this.leavers.filter((p) => (p.leftAt ?? 0) >= from),
          Date.now() + this.#ruleMs + 60_000,
        );
        await this.system.relays.pause();
        await second.stop();
        this.system.secondInstanceFor = undefined;
        this.system.relays.resume();
      },
      15_000,
    );
  }

  /**
   * The whole run: wait until no delivery is outstanding (a crash mid-delivery is redelivered
   * after its lease), then count every alert officers see against everyone who left.
   */
  async final(): Promise<{ outboxLeft: number; outboxRows: string[] } & AlertCounts> {
    const outboxLeft = await this.#drainOutbox();
    const shown = await this.system.officer.violations(0, Date.now() + 60_000);
    return {
      outboxLeft,
      outboxRows: this.#outboxRows,
      ...tally(shown, this.leavers, this.system.people),
    };
  }

  /** What is left in the outbox when the drain gives up (PostgreSQL): to tell why. */
  #outboxRows: string[] = [];

  async #drainOutbox(deadlineMs = 120_000): Promise<number> {
    const deadline = Date.now() + deadlineMs;
    const client = this.system.appDatabase();
    if (client) {
      await client.connect();
      try {
        for (;;) {
          const { rows } = await client.query<{ n: number }>(
            'SELECT count(*)::int AS n FROM outbox WHERE delivered_at IS NULL',
          );
          const n = rows[0]?.n ?? 0;
          if (n > 0 && Date.now() > deadline) {
            const left = await client.query<Record<string, unknown>>(
              `SELECT payload->>'kind' AS kind, payload->>'beaconId' AS beacon, attempts, last_error,
                      next_attempt_at - $1 AS due_in_ms, lease_until - $1 AS lease_in_ms
                 FROM outbox WHERE delivered_at IS NULL`,
              [Date.now()],
            );
            this.#outboxRows = left.rows.map((r) => JSON.stringify(r));
          }
          if (n === 0 || Date.now() > deadline) return n;
          await delay(500);
        }
      } finally {
        await client.end();
      }
    }
    // PGlite: only the app process can open its database; stop it cleanly, look, and restart it
    // only to deliver what is left (the run ends here: an empty outbox leaves it stopped).
    for (;;) {
      await this.system.relays.pause();
      await this.system.app.stop();
      const db = await openDatabase({ dataDir: join(this.system.dir, 'app-db') });
      let n: number;
      try {
        const { rows } = await db.query<{ n: number }>(
          'SELECT count(*)::int AS n FROM outbox WHERE delivered_at IS NULL',
        );
        n = rows[0]?.n ?? 0;
      } finally {
        await db.close();
      }
      if (n === 0 || Date.now() > deadline) return n;
      await this.system.app.start();
      this.system.relays.resume();
      // Leased rows go out again once their lease (30 s) has passed.
      await delay(5_000);
    }
  }
}

export function format(r: ScenarioResult): string {
  if (r.skipped) return `${r.name} [${r.database}]: skipped — ${r.skipped}`;
  const aims = Object.entries(r.aims)
    .map(([k, v]) => `${k} ×${v}`)
    .join(', ');
  return (
    `${r.name} [${r.database}] ${r.seconds} s: alerts expected ${r.expected}, delivered ${r.delivered}, ` +
    `duplicates ${r.duplicates}, false ${r.falseAlerts}, missing ${r.missing}; presence accepted ` +
    `${r.presenceAccepted} (${r.tokensAccepted} tokens), failed ${r.presenceFailed}, checked ` +
    `${r.presenceChecked}, lost ${r.presenceLost}; kills ${r.kills}, restarts ${r.restarts}, cuts ${r.cuts}, ` +
    `database restarts ${r.databaseRestarts}, unplanned exits ${r.unplannedExits}` +
    (aims ? ` (${aims})` : '') +
    (r.recoverySeconds !== undefined
      ? `; delivered ${r.recoverySeconds} s after police came back`
      : '')
  );
}
