/**
 * `npm run bench:dashboard`: how long the officers' dashboard takes, in headless Chromium, from
 * navigation to the alert queue being on screen with 10,000 open alerts (both queues, with
 * addresses), next to the same with 100 open alerts measured in the same run, rounds
 * alternating; also the queue endpoint's own response time and size.
 */
import { existsSync } from 'node:fs';
import { type BrowserContext, chromium } from 'playwright-core';
import { httpsRequest } from '../test/support/https-client.js';
import { machine, median } from './measure.js';
import { below, writeReport } from './report.js';
import { type BenchPolice, signInCookie, startBenchPolice } from './police/backend.js';
import { seedOpenAlerts } from './police/seed.js';

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const LARGE = Number(process.env.BENCH_ALERTS ?? 10_000);
const SMALL = 100;
const HISTORY = Number(process.env.BENCH_HISTORY ?? 20_000);
const TARGET_MS = 1000;
// The dashboard's page of each queue (QUEUE_PAGE in police-backend/dashboard/src/queue-store.ts).
const QUEUE_PAGE = 100;

if (!existsSync(CHROMIUM)) {
  console.error(`${CHROMIUM} not found (apt-get install -y chromium, or set CHROMIUM)`);
  process.exit(1);
}

interface Setup {
  readonly name: string;
  readonly police: BenchPolice;
  readonly cookie: string;
  readonly counts: { violation: number; maintenance: number };
  readonly context: BrowserContext;
}

const browser = await chromium.launch({
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

async function setup(name: string, open: number, history: number): Promise<Setup> {
  const police = await startBenchPolice('warn');
  const counts = await seedOpenAlerts(police, open, history);
  const cookie = await signInCookie(police);
  // Self-signed bench CA: the browser is told to accept it rather than given a trust store.
  const context = await browser.newContext({
    ignoreHTTPSErrors: true,
    viewport: { width: 1280, height: 800 },
  });
  const [cookieName, ...value] = cookie.split('=');
  await context.addCookies([
    {
      name: cookieName as string,
      value: value.join('='),
      domain: 'localhost',
      path: '/',
      httpOnly: true,
      secure: true,
      sameSite: 'Strict',
    },
  ]);
  return { name, police, cookie, counts, context };
}

/**
 * In the page, before its own script: each animation frame, check whether the queue is shown
 * (both tab counts as expected, the first rows in the list); the time is taken once that frame
 * has been painted. `performance.now()` counts from the start of the navigation. A string: the
 * root TypeScript project has no DOM typings.
 */
const watchQueue = (expected: { violation: number; maintenance: number }): string => `
  (() => {
    const shown = () => {
      const v = document.querySelector('[data-testid="queue-tab-violation"]');
      const m = document.querySelector('[data-testid="queue-tab-maintenance"]');
      const list = document.querySelector('[data-testid="queue"]');
      return v?.getAttribute('data-count') === '${expected.violation}' &&
        m?.getAttribute('data-count') === '${expected.maintenance}' &&
        !!list?.isConnected && list.querySelector('[data-testid="queue-item"]') !== null;
    };
    const check = () => {
      if (!shown()) return requestAnimationFrame(check);
      // After this frame's rendering work: the next task runs once it has been painted.
      setTimeout(() => {
        window.__queueShownAt = performance.now();
        window.__queueRows = document.querySelectorAll('[data-testid="queue-item"]').length;
      }, 0);
    };
    requestAnimationFrame(check);
  })();`;

/** In the page: press "Show more" and time it until the next page of rows has been painted. */
const SHOW_MORE = `new Promise((resolve) => {
  const rows = () => document.querySelectorAll('[data-testid="queue-item"]').length;
  const before = rows();
  const button = document.querySelector('[data-testid="queue-more"]');
  if (!button || button.closest('[hidden]')) return resolve(null);
  const start = performance.now();
  button.click();
  const check = () => {
    if (rows() <= before) return requestAnimationFrame(check);
    setTimeout(() => resolve({ ms: performance.now() - start, rows: rows() }), 0);
  };
  requestAnimationFrame(check);
})`;

const TABS = `[...document.querySelectorAll('[data-count]')].map((e) => e.dataset.testid + '=' + e.dataset.count).join(', ')`;

const MEASURED = `({
  shownMs: window.__queueShownAt,
  rowsInDom: window.__queueRows,
  domNodes: document.getElementsByTagName('*').length,
  jsHeapMb: (performance.memory?.usedJSHeapSize ?? 0) / 2 ** 20,
})`;

interface PageRound {
  shownMs: number;
  /** "Show more": from the click to the next page painted; null when the queue is shown whole. */
  moreMs: number | null;
  rowsInDom: number;
  domNodes: number;
  jsHeapMb: number;
}

async function pageLoad(s: Setup): Promise<PageRound> {
  const page = await s.context.newPage();
  await page.addInitScript({ content: watchQueue(s.counts) });
  await page.goto(`https://localhost:${s.police.backend.officerPort}/#/queue`);
  try {
    await page.waitForFunction(
      () => (globalThis as { __queueShownAt?: number }).__queueShownAt !== undefined,
      undefined,
      { timeout: 60_000, polling: 50 },
    );
  } catch (err) {
    const tabs = await page.evaluate(TABS);
    throw new Error(`the queue was not shown (${tabs}; expected ${JSON.stringify(s.counts)})`, {
      cause: err,
    });
  }
  const r = await page.evaluate<Omit<PageRound, 'moreMs'>>(MEASURED);
  const more = await page.evaluate<{ ms: number; rows: number } | null>(SHOW_MORE);
  await page.close();
  return { ...r, moreMs: more?.ms ?? null };
}

/** The queue endpoint on its own, as the dashboard asks for it (first page of each queue). */
async function apiRound(s: Setup, query: string): Promise<{ ms: number; bytes: number }> {
  const start = process.hrtime.bigint();
  const r = await httpsRequest(
    s.police.backend.officerPort,
    'GET',
    `/api/alerts?${query}`,
    { ca: s.police.pki.ca.cert },
    undefined,
    { cookie: s.cookie },
  );
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (r.status !== 200) throw new Error(`queue endpoint answered ${r.status}`);
  return { ms, bytes: r.body.length };
}

const DASHBOARD_QUERY = `view=queue&limit=${QUEUE_PAGE}`;
// Without a limit: up to 500 of each queue, what other clients of the API get.
const DEFAULT_QUERY = 'view=queue';

const small = await setup(`${SMALL} open alerts`, SMALL, 0);
const large = await setup(`${LARGE.toLocaleString('en-US')} open alerts`, LARGE, HISTORY);
const setups = [small, large];

type ApiRound = { ms: number; bytes: number };
const pages = new Map<Setup, PageRound[]>(setups.map((s) => [s, []]));
const apis = new Map<Setup, { page: ApiRound[]; all: ApiRound[] }>(
  setups.map((s) => [s, { page: [], all: [] }]),
);
for (const s of setups) {
  await pageLoad(s); // warm-up: Chromium's caches, the backend's JIT and buffers
  await apiRound(s, DASHBOARD_QUERY);
}
for (let r = 0; r < ROUNDS; r++) {
  for (const s of setups) {
    apis.get(s)?.page.push(await apiRound(s, DASHBOARD_QUERY));
    apis.get(s)?.all.push(await apiRound(s, DEFAULT_QUERY));
    pages.get(s)?.push(await pageLoad(s));
  }
}

const summaries = setups.map((s) => {
  const p = pages.get(s) ?? [];
  const a = apis.get(s) ?? { page: [], all: [] };
  const more = p.map((x) => x.moreMs).filter((x): x is number => x !== null);
  return {
    name: s.name,
    counts: s.counts,
    shownMs: median(p.map((x) => x.shownMs)),
    shownMsRounds: p.map((x) => Math.round(x.shownMs)),
    showMoreMs: more.length ? median(more) : null,
    apiMs: median(a.page.map((x) => x.ms)),
    apiBytes: a.page[0]?.bytes ?? 0,
    apiDefaultMs: median(a.all.map((x) => x.ms)),
    apiDefaultBytes: a.all[0]?.bytes ?? 0,
    rowsInDom: p[0]?.rowsInDom ?? 0,
    domNodes: median(p.map((x) => x.domNodes)),
    jsHeapMb: median(p.map((x) => x.jsHeapMb)),
  };
});

const date = new Date().toISOString();
console.log(`dashboard queue render — ${machine()} — ${date}`);
console.log(
  `Chromium ${browser.version()} headless, 1280 × 800; ${ROUNDS} rounds, median; ${large.police.db.kind}; ${HISTORY.toLocaleString('en-US')} resolved alerts in the large database's history\n`,
);
const row = (cells: (string | number)[], widths: number[]) =>
  cells.map((c, i) => String(c)[i === 0 ? 'padEnd' : 'padStart'](widths[i] ?? 10)).join(' ');
const widths = [24, 14, 12, 14, 11, 18, 13, 8, 9, 7];
console.log(
  row(
    [
      'open alerts (viol./maint.)',
      'nav → shown ms',
      'show more ms',
      `API ms (${QUEUE_PAGE}/q)`,
      'API bytes',
      'API ms (500/queue)',
      'API bytes',
      'rows',
      'DOM nodes',
      'heap MB',
    ],
    widths,
  ),
);
for (const s of summaries) {
  console.log(
    row(
      [
        `${s.counts.violation + s.counts.maintenance} (${s.counts.violation}/${s.counts.maintenance})`,
        Math.round(s.shownMs),
        s.showMoreMs === null ? '—' : Math.round(s.showMoreMs),
        s.apiMs.toFixed(1),
        s.apiBytes,
        s.apiDefaultMs.toFixed(1),
        s.apiDefaultBytes,
        s.rowsInDom,
        s.domNodes,
        s.jsHeapMb.toFixed(1),
      ],
      widths,
    ),
  );
}
const big = summaries[1];
console.log(
  `\nper round (ms): ${summaries.map((s) => `${s.name}: ${s.shownMsRounds.join(', ')}`).join('; ')}`,
);
console.log(
  `target: under ${TARGET_MS} ms with ${LARGE.toLocaleString('en-US')} open alerts — ${big && big.shownMs < TARGET_MS ? 'met' : 'missed'}`,
);

const few = summaries[0];
writeReport(
  'dashboard-render',
  big
    ? [
        {
          measure: `alert queue shown in Chromium, ${LARGE.toLocaleString('en-US')} open alerts (${large.police.db.kind})`,
          value: Math.round(big.shownMs),
          unit: 'ms',
          ...(few
            ? {
                baseline: {
                  label: `${few.counts.violation + few.counts.maintenance} open alerts`,
                  value: Math.round(few.shownMs),
                  unit: 'ms',
                },
              }
            : {}),
          target: below(big.shownMs, TARGET_MS, 'ms'),
        },
      ]
    : [],
  {
    chromium: browser.version(),
    rounds: ROUNDS,
    database: large.police.db.kind,
    history: HISTORY,
    summaries,
    queuePage: QUEUE_PAGE,
    raw: setups.map((s) => ({ name: s.name, pages: pages.get(s), api: apis.get(s) })),
  },
);
for (const s of setups) await s.context.close();
await browser.close();
for (const s of setups) await s.police.close();
