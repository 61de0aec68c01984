import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { type Browser, type Page, chromium } from 'playwright-core';
import type { Database } from '../../backend-kit/db.js';
import { databaseTargets } from '../../test/support/databases.js';
import type { AlertMessage, Queue } from '../src/alerts.js';
import {
  MIN,
  UNKNOWN_BEACON,
  addBeaconRecords,
  openAlerts,
  setStates,
  storeAlerts,
} from './alert-fixtures.js';
import {
  type PoliceHarness,
  PASSWORD,
  addOfficer,
  alertMessage,
  postAlert,
  startPolice,
} from './harness.js';

const CHROMIUM = '/usr/bin/chromium';
/** The dashboard's page size (QUEUE_PAGE in dashboard/src/queue-store.ts). */
const PAGE = 100;

/** Open alerts: 150 violations, 120 maintenance (three urgencies), and some that must not count. */
function queueMessages(now: number): { messages: AlertMessage[]; resolved: string[] } {
  const messages: AlertMessage[] = [];
  const make = (kind: AlertMessage['kind'], n: number, detail: AlertMessage['detail']) =>
    alertMessage({
      kind,
      beaconId: ['SB-1', 'SB-2', 'SB-3', UNKNOWN_BEACON][n % 4],
      // Fifty distinct times: ties are ordered by arrival, then ID, on both sides.
      occurredAt: now - (60 - (n % 50)) * MIN,
      gapStartedAt: kind === 'NO_PRESENCE' ? now - 90 * MIN : null,
      detail,
    }) as AlertMessage;
  for (let n = 0; n < 150; n++)
    messages.push(make('NO_PRESENCE', n, { lastPresenceAt: now - 90 * MIN, graceSeconds: 600 }));
  for (let n = 0; n < 120; n++) {
    const kind =
      (['BEACON_FAULT', 'SUSPECTED_SPOOFING', 'RELAY_SILENT'] as const)[n % 3] ?? 'BEACON_FAULT';
    messages.push(
      make(kind, n, {
        reasons: n % 2 ? 'battery_depleted' : 'low_battery',
        invalidTokens: 3,
        silentFrom: now - 500 * MIN,
      }),
    );
  }
  const extra = [0, 1, 2, 3].map((n) =>
    make(n % 2 ? 'BEACON_FAULT' : 'NO_PRESENCE', n, { reasons: 'low_battery' }),
  );
  messages.push(...extra);
  return { messages, resolved: extra.map((m) => m.alertId) };
}

const shownIds = (page: Page) =>
  page
    .locator('[data-testid="queue-item"]')
    .evaluateAll((els) => els.map((e) => e.getAttribute('data-alert-id') ?? ''));

/** Wait for the n-th row, then there must be exactly n (a page is drawn at once). */
async function rowsShown(page: Page, n: number): Promise<void> {
  const rows = page.locator('[data-testid="queue-item"]');
  await rows.nth(n - 1).waitFor();
  assert.equal(await rows.count(), n);
}

describe('dashboard queue longer than a page, in headless Chromium', function () {
  this.timeout(120_000);
  let browser: Browser;

  before(async function () {
    if (!existsSync(CHROMIUM)) {
      // Reason: no browser on this machine; `.ci/run` installs Debian's chromium so CI always runs this.
      console.log(`      skipped: ${CHROMIUM} not found (apt-get install -y chromium)`);
      this.skip();
    }
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  });
  after(async () => {
    await browser?.close();
  });

  for (const target of databaseTargets()) {
    describe(`on ${target.name}`, () => {
      let db: Database;
      let h: PoliceHarness;

      before(async () => {
        db = await target.open();
        h = await startPolice(db);
        h.clock.ms = Date.now();
        await addBeaconRecords(db);
        const { messages, resolved } = queueMessages(h.clock.ms);
        await storeAlerts(db, messages, h.clock.ms);
        await setStates(
          db,
          resolved.map((id) => ({ id, state: 'resolved' as const, outcome: 'false_alarm' })),
        );
        await addOfficer(h, 'officer1');
      });
      after(async () => {
        await h?.backend.close();
        await db?.close();
      });

      it('shows the first page, appends the rest on "Show more" without duplicates, and the exact counts', async () => {
        const expected = async (queue: Queue) => (await openAlerts(db, queue)).map((a) => a.id);
        const violations = await expected('violation');
        assert.equal(violations.length, 150);
        assert.equal((await expected('maintenance')).length, 120);

        const context = await browser.newContext({
          ignoreHTTPSErrors: true,
          viewport: { width: 1280, height: 800 },
        });
        const page = await context.newPage();
        await page.goto(`https://localhost:${h.backend.officerPort}/`);
        await page.getByTestId('signin-username').fill('officer1');
        await page.getByTestId('signin-password').fill(PASSWORD);
        await page.getByTestId('signin-submit').click();
        await page.locator('[data-testid="live-status"][data-state="connected"]').waitFor();

        // Violations: the first page in the server's order; the tabs count every open alert.
        await page.locator('[data-testid="queue"][data-queue="violation"]').waitFor();
        await rowsShown(page, PAGE);
        assert.deepEqual(await shownIds(page), violations.slice(0, PAGE));
        await page.locator('[data-testid="queue-tab-violation"][data-count="150"]').waitFor();
        await page.locator('[data-testid="queue-tab-maintenance"][data-count="120"]').waitFor();
        assert.match(await page.getByTestId('queue-shown').innerText(), /first 100 of 150/);

        await page.getByTestId('queue-more').click();
        await rowsShown(page, 150);
        const all = await shownIds(page);
        assert.equal(new Set(all).size, 150, 'no alert shown twice');
        assert.deepEqual(all, violations, 'the next page appended, in order');
        await page.getByTestId('queue-more').waitFor({ state: 'hidden' });
        assert.equal(
          await page.locator(':focus').getAttribute('data-alert-id'),
          violations[PAGE],
          'focus on the first new row',
        );
        assert.equal(
          await page.getByTestId('queue-tab-violation').getAttribute('data-count'),
          '150',
        );

        // Maintenance: an alert arrives past the loaded page; it is counted, then loaded with the rest.
        await page.getByTestId('queue-tab-maintenance').click();
        await page.locator('[data-testid="queue"][data-queue="maintenance"]').waitFor();
        await rowsShown(page, PAGE);
        const late = alertMessage({
          kind: 'BEACON_FAULT',
          beaconId: 'SB-1',
          occurredAt: h.clock.ms,
          gapStartedAt: null,
          detail: { reasons: 'clock_drift', offsetSeconds: 200 },
        });
        assert.equal((await postAlert(h, late)).status, 200);
        const maintenance = await expected('maintenance');
        assert.equal(maintenance.at(-1), late.alertId, 'it sorts last');
        await page.locator('[data-testid="queue-tab-maintenance"][data-count="121"]').waitFor();
        assert.deepEqual(await shownIds(page), maintenance.slice(0, PAGE), 'not drawn yet');
        assert.match(await page.getByTestId('queue-shown').innerText(), /first 100 of 121/);

        await page.getByTestId('queue-more').click();
        await rowsShown(page, 121);
        const maintenanceShown = await shownIds(page);
        assert.equal(new Set(maintenanceShown).size, 121, 'no alert shown twice');
        assert.deepEqual(maintenanceShown, maintenance);
        await page.getByTestId('queue-more').waitFor({ state: 'hidden' });
        assert.equal(
          await page.getByTestId('queue-tab-violation').getAttribute('data-count'),
          '150',
        );
        await context.close();
      });
    });
  }
});
