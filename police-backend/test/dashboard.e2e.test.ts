import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium } from 'playwright-core';
import { type Database, openDatabase } from '../../backend-kit/db.js';
import {
  type PoliceHarness,
  PASSWORD,
  addOfficer,
  alertMessage,
  api,
  postAlert,
  signIn,
  startPolice,
  updateMessage,
} from './harness.js';
import { StubApp } from './stub-app.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = fileURLToPath(new URL('../../../test/artifacts/', import.meta.url));
const XSS = '<img src=x onerror=alert(1)><script>alert(2)</script> 12 Example Street';

describe('officer dashboard in headless Chromium', function () {
  this.timeout(120_000);
  let db: Database;
  let h: PoliceHarness;
  let browser: Browser;
  let app: StubApp;

  before(async function () {
    if (!existsSync(CHROMIUM)) {
      // Reason: no browser on this machine; `.ci/run` installs Debian's chromium so CI always runs this.
      console.log(`      skipped: ${CHROMIUM} not found (apt-get install -y chromium)`);
      this.skip();
    }
    db = await openDatabase({ dataDir: 'memory://' });
    app = await StubApp.start();
    h = await startPolice(db, { appUrl: app.url });
    h.clock.ms = Date.now();
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
    await h?.backend.close().catch(() => undefined);
    await app?.close();
    await db?.close();
  });

  it('signs in, sees a violation arrive live, works both queues, schedules an absence, resolves, and shows a lost connection', async () => {
    const setup = await signIn(h, 'installer');
    for (const [beaconId, address, caseRef] of [
      ['SB-0042', XSS, 'C-2026-042'],
      ['SB-0043', '3 Harbour Road', 'C-2026-043'],
      ['SB-0044', '9 Mill Lane', 'C-2026-044'],
    ] as const) {
      await api(h, setup, 'POST', '/api/beacons', { beaconId, address, caseRef });
    }
    await api(h, setup, 'POST', '/api/beacons/SB-0042/enable', {});
    assert.equal(await h.backend.sendCommands(), 1, 'the stub app backend confirms monitoring');

    // Beacon maintenance: a battery that ran down (reported twice), and spoofing that stopped.
    const battery = alertMessage({
      beaconId: 'SB-0043',
      kind: 'BEACON_FAULT',
      occurredAt: Date.now() - 3_600_000,
      gapStartedAt: null,
      detail: { reasons: 'low_battery', batteryPercent: 12 },
    });
    await postAlert(h, battery);
    await postAlert(
      h,
      updateMessage(battery, 'ALERT_UPDATED', {
        reasons: 'low_battery,battery_depleted',
        batteryPercent: 2,
      }),
    );
    const spoofing = alertMessage({
      beaconId: 'SB-0044',
      kind: 'SUSPECTED_SPOOFING',
      occurredAt: Date.now() - 1_800_000,
      gapStartedAt: null,
      detail: { invalidTokens: 12, since: Date.now() - 2_400_000 },
    });
    await postAlert(h, spoofing);
    await postAlert(h, updateMessage(spoofing, 'FAULT_CLEARED', {}));
    await addOfficer(h, 'officer1');

    // Self-signed test CA: the browser is told to accept it rather than given a trust store.
    const context = await browser.newContext({
      ignoreHTTPSErrors: true,
      viewport: { width: 1280, height: 800 },
    });
    const page = await context.newPage();
    const dialogs: string[] = [];
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    const base = `https://localhost:${h.backend.officerPort}`;
    await page.goto(`${base}/`);
    await page.getByTestId('signin-username').fill('officer1');
    await page.getByTestId('signin-password').fill(PASSWORD);
    await page.getByTestId('signin-submit').click();
    await page.getByTestId('queue-tab-violation').waitFor();
    await page.locator('[data-testid="live-status"][data-state="connected"]').waitFor();

    // A confirmed violation arrives from the app backend while the officer watches: no reload.
    const m = alertMessage({
      beaconId: 'SB-0042',
      occurredAt: Date.now() - 60_000,
      gapStartedAt: Date.now() - 1_080_000,
      detail: {
        lastPresenceAt: Date.now() - 1_080_000,
        provisionalAt: Date.now() - 660_000,
        confirmedAt: Date.now() - 60_000,
        graceSeconds: 600,
        afterAbsence: false,
      },
    });
    assert.equal((await postAlert(h, m)).status, 200);
    const item = page.locator(`[data-testid="queue-item"][data-alert-id="${String(m.alertId)}"]`);
    await item.waitFor({ timeout: 10_000 });
    const text = await item.innerText();
    assert.ok(text.includes('<script>alert(2)</script>'), 'the address is shown as text');
    assert.match(text, /Not at home — confirmed after 10 min grace/);
    assert.deepEqual(dialogs, [], 'no script from the address ran');
    assert.equal(
      await page.locator('[data-testid="queue-item"]').count(),
      1,
      'maintenance is not in the violation queue',
    );
    await page.locator('[data-testid="queue-tab-violation"][data-count="1"]').waitFor();
    await page.locator('[data-testid="queue-tab-maintenance"][data-count="2"]').waitFor();
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: `${ARTIFACTS}dashboard-queue.png`, fullPage: true });

    // The maintenance tab: plain words, repeats, a cleared condition, a visit needed today.
    await page.getByTestId('queue-tab-maintenance').click();
    await page.locator('[data-testid="queue"][data-queue="maintenance"]').waitFor();
    const items = page.locator('[data-testid="queue-item"]');
    assert.equal(await items.count(), 2);
    const depleted = await items.nth(0).innerText();
    assert.match(depleted, /Beacon battery depleted/);
    assert.match(depleted, /×2/);
    assert.match(depleted, /visit today/i);
    assert.match(depleted, /3 Harbour Road/);
    const spoofed = await items.nth(1).innerText();
    assert.match(spoofed, /Possible spoofing: 12 invalid tokens/);
    assert.match(spoofed, /Condition cleared/);
    await page.screenshot({ path: `${ARTIFACTS}dashboard-maintenance.png`, fullPage: true });

    // An authorised absence for the monitored beacon, confirmed by the app backend live.
    await page.getByTestId('nav-beacons').click();
    await page
      .locator('[data-testid="beacon-row"][data-beacon-id="SB-0042"] [data-testid="beacon-open"]')
      .click();
    await page.getByTestId('absence-form').waitFor();
    await page.getByTestId('absence-none').waitFor();
    const start = new Date(Date.now() + 3_600_000);
    const local = (d: Date) =>
      new Date(d.getTime() - d.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
    await page.getByTestId('absence-start').fill(local(start));
    await page.getByTestId('absence-end').fill(local(new Date(start.getTime() + 7_200_000)));
    await page.getByTestId('absence-reason').fill('test appointment');
    await page.getByTestId('absence-submit').click();
    const absence = page.getByTestId('absence-row');
    await absence.locator('[data-delivery="pending"]').waitFor();
    assert.equal(await h.backend.sendCommands(), 1);
    await absence.locator('[data-delivery="scheduled"]').waitFor({ timeout: 10_000 });
    assert.match(await absence.innerText(), /test appointment/);
    const sent = app.to(/\/absences$/);
    assert.equal(sent.length, 1);
    assert.deepEqual(Object.keys(sent[0]?.body as object).sort(), [
      'absenceId',
      'endsAt',
      'startsAt',
    ]);
    await page.screenshot({ path: `${ARTIFACTS}dashboard-beacon.png`, fullPage: true });
    await absence.getByTestId('absence-cancel').click();
    await absence.locator('[data-delivery="cancel_pending"]').waitFor();
    assert.equal(await h.backend.sendCommands(), 1);
    await page.getByTestId('absence-none').waitFor({ timeout: 10_000 });
    const audited = await db.query<{ action: string }>(
      "SELECT action FROM audit_log WHERE officer = 'officer1' AND action LIKE 'absence.%' ORDER BY seq",
    );
    assert.deepEqual(
      audited.rows.map((r) => r.action),
      ['absence.scheduled', 'absence.cancelled'],
    );

    await page.getByTestId('nav-queue').click();
    await item.click();
    await page.getByTestId('alert-detail').waitFor();
    // The person comes back while the officer looks at the alert.
    await postAlert(
      h,
      updateMessage(m, 'RESOLVED_BY_EVIDENCE', {
        lastPresenceAt: Date.now(),
        coveredByEvidence: false,
      }),
    );
    await page
      .getByTestId('recovery')
      .filter({ hasText: /Back home at/ })
      .waitFor({ timeout: 10_000 });
    await page.getByTestId('action-acknowledge').click();
    await page
      .getByTestId('alert-state')
      .filter({ hasText: /acknowledged/i })
      .waitFor();
    await page.getByTestId('action-dispatch').click();
    await page
      .getByTestId('alert-state')
      .filter({ hasText: /dispatched/i })
      .waitFor();
    await page.getByTestId('resolve-outcome').selectOption('violation_confirmed');
    await page.getByTestId('resolve-note').fill('Not at home at 14:05; returned 14:40.');
    await page.getByTestId('action-resolve').click();
    await page
      .getByTestId('alert-state')
      .filter({ hasText: /resolved/i })
      .waitFor();
    await page.screenshot({ path: `${ARTIFACTS}dashboard-resolved.png`, fullPage: true });
    const { rows } = await db.query<{ state: string; outcome: string }>(
      'SELECT state, outcome FROM alerts WHERE id = $1',
      [m.alertId],
    );
    assert.deepEqual(rows, [{ state: 'resolved', outcome: 'violation_confirmed' }]);
    const opened = await db.query<{ officer: string }>(
      "SELECT officer FROM audit_log WHERE action = 'address.live_feed_opened'",
    );
    assert.ok(
      opened.rows.some((r) => r.officer === 'officer1'),
      'opening the live feed is in the audit log',
    );

    // The server goes away: the page says so.
    await h.backend.close();
    const lost = page.locator('[data-testid="live-status"][data-state="disconnected"]');
    await lost.waitFor({ timeout: 20_000 });
    assert.match(await lost.innerText(), /disconnected/i);
    await context.close();
  });
});
