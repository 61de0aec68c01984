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
} from './harness.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = fileURLToPath(new URL('../../../test/artifacts/', import.meta.url));
const XSS = '<img src=x onerror=alert(1)><script>alert(2)</script> 12 Example Street';

describe('officer dashboard in headless Chromium', function () {
  this.timeout(120_000);
  let db: Database;
  let h: PoliceHarness;
  let browser: Browser;

  before(async function () {
    if (!existsSync(CHROMIUM)) {
      // Reason: no browser on this machine; `.ci/run` installs Debian's chromium so CI always runs this.
      console.log(`      skipped: ${CHROMIUM} not found (apt-get install -y chromium)`);
      this.skip();
    }
    db = await openDatabase({ dataDir: 'memory://' });
    h = await startPolice(db);
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
    await db?.close();
  });

  it('signs in, sees an alert arrive live with its address as text, resolves it, and shows a lost connection', async () => {
    const setup = await signIn(h, 'installer');
    await api(h, setup, 'POST', '/api/beacons', {
      beaconId: 'SB-0042',
      address: XSS,
      caseRef: 'C-2026-042',
    });
    await api(h, setup, 'POST', '/api/beacons', {
      beaconId: 'SB-0043',
      address: '3 Harbour Road',
      caseRef: 'C-2026-043',
    });
    await postAlert(
      h,
      alertMessage({
        beaconId: 'SB-0043',
        kind: 'LOW_BATTERY',
        occurredAt: Date.now() - 3_600_000,
        gapStartedAt: null,
        detail: { batteryPercent: 12 },
      }),
    );
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
    await page.getByTestId('queue').waitFor();
    await page.locator('[data-testid="live-status"][data-state="connected"]').waitFor();

    // An alert arrives from the app backend while the officer watches: no reload.
    const m = alertMessage({
      beaconId: 'SB-0042',
      occurredAt: Date.now() - 60_000,
      gapStartedAt: Date.now() - 480_000,
      detail: { lastPresenceAt: Date.now() - 480_000 },
    });
    assert.equal((await postAlert(h, m)).status, 200);
    const item = page.locator(`[data-testid="queue-item"][data-alert-id="${String(m.alertId)}"]`);
    await item.waitFor({ timeout: 10_000 });
    assert.ok(
      (await item.innerText()).includes('<script>alert(2)</script>'),
      'the address is shown as text',
    );
    assert.deepEqual(dialogs, [], 'no script from the address ran');
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: `${ARTIFACTS}dashboard-queue.png`, fullPage: true });

    await item.click();
    await page.getByTestId('alert-detail').waitFor();
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
