/**
 * Start-up and wiring: session check, sign-in, the shell, routes → pages, live updates → pages.
 * The only state kept is in memory (the CSRF value inside Api); nothing goes to storage.
 */
import { Api, ApiError, describeError } from './api.js';
import { fill, h } from './dom.js';
import { headline } from './alert-text.js';
import { tick } from './format.js';
import { LiveConnection } from './live.js';
import { QUEUE_PAGE, QueueStore } from './queue-store.js';
import type { Route } from './router.js';
import { parseRoute } from './router.js';
import type { Shell } from './shell.js';
import { createShell } from './shell.js';
import type { LiveMessage, Session } from './types.js';
import type { Context, View } from './view.js';
import { pageHeading } from './view.js';
import { addressText } from './view-queue.js';
import { alertPage } from './view-alert.js';
import { auditPage } from './view-audit.js';
import { beaconPage } from './view-beacon.js';
import { beaconsPage } from './view-beacons.js';
import { historyPage } from './view-history.js';
import { queuePage } from './view-queue.js';
import { signInPage } from './view-signin.js';
import { statsPage } from './view-stats.js';

const TICK_MS = 15_000;

const root = document.getElementById('app') ?? document.body;
const api = new Api();
const queue = new QueueStore();

let ctx: Context | null = null;
let shell: Shell | null = null;
let view: View | null = null;
let live: LiveConnection | null = null;
let ticker: ReturnType<typeof setInterval> | null = null;
let unsubscribeQueue: (() => void) | null = null;

function notFound(route: Route & { name: 'notfound' }): View {
  return {
    title: 'Not found',
    el: h(
      'section',
      { class: 'page' },
      pageHeading('Page not found'),
      h('p', null, 'There is no page at ', h('code', null, `#${route.path}`), '. '),
      h('p', null, h('a', { href: '#/queue' }, 'Go to the alert queue')),
    ),
  };
}

function pageFor(c: Context, route: Route): View {
  switch (route.name) {
    case 'queue':
      return queuePage(c, route.queue);
    case 'alert':
      return alertPage(c, route.id);
    case 'beacons':
      return beaconsPage(c);
    case 'beacon':
      return beaconPage(c, route.id);
    case 'history':
      return historyPage(c, route.params);
    case 'stats':
      return statsPage(c, route.params);
    case 'audit':
      return auditPage(c);
    case 'notfound':
      return notFound(route);
  }
}

function showRoute(moveFocus: boolean): void {
  if (!ctx || !shell) return;
  const route = parseRoute(location.hash);
  view?.dispose?.();
  view = pageFor(ctx, route);
  fill(shell.main, view.el);
  shell.setActive(
    route.name === 'alert' ? 'queue' : route.name === 'beacon' ? 'beacons' : route.name,
  );
  shell.showError(null);
  // The title stays generic: it ends up in browser history, which must not hold addresses.
  document.title = `${view.title} · SmartBeacon Police`;
  if (moveFocus) view.el.querySelector<HTMLElement>('h1')?.focus();
}

function onLiveMessage(message: LiveMessage): void {
  if (message.type === 'alert') {
    queue.apply(message.alert);
    view?.onAlert?.(message.alert);
  } else if (message.type === 'counts') {
    queue.setCounts(message.counts, message.countsAt);
  } else if (message.type === 'beacon') {
    view?.onBeacon?.(message.beacon);
  } else if (message.type === 'absence') {
    view?.onAbsence?.(message.absence);
  }
}

function reloadQueue(): void {
  queue.load(() => api.queue(QUEUE_PAGE)).catch(() => undefined); // the queue page shows its own error
}

function signedIn(session: Session): void {
  const c: Context = {
    api,
    session,
    queue,
    announce: (text) => shell?.announce(text),
  };
  ctx = c;
  shell = createShell(session, () => void signOut());
  fill(root, shell.root);

  unsubscribeQueue = queue.subscribe((change) => {
    shell?.setQueueCount(queue.loaded ? queue.total() : null);
    if (change.type === 'added') {
      shell?.announce(`New alert: ${headline(change.alert)}, ${addressText(change.alert)}.`);
    }
  });
  reloadQueue();

  live = new LiveConnection({
    onMessage: onLiveMessage,
    onStatus: (status) => shell?.setLive(status),
    onReconnected: () => {
      reloadQueue();
      view?.refresh?.();
    },
    beforeRetry: async () => {
      // A refused upgrade (401) looks like any other drop; ask over HTTP whether we are signed in.
      try {
        await api.getSession();
        return true;
      } catch (e) {
        return !(e instanceof ApiError && e.status === 401);
      }
    },
  });
  live.start();

  ticker = setInterval(() => tick(document), TICK_MS);
  if (!location.hash || location.hash === '#' || location.hash === '#/') {
    history.replaceState(null, '', '#/queue');
  }
  showRoute(false);
}

/** Back to the sign-in page, forgetting everything held for the session. */
function signedOut(notice: string | null): void {
  live?.stop();
  live = null;
  if (ticker !== null) clearInterval(ticker);
  ticker = null;
  unsubscribeQueue?.();
  unsubscribeQueue = null;
  view?.dispose?.();
  view = null;
  queue.clear();
  api.setCsrf(null);
  ctx = null;
  shell = null;
  document.title = 'Sign in · SmartBeacon Police';
  fill(root, signInPage(api, notice, signedIn));
}

async function signOut(): Promise<void> {
  try {
    await api.signOut();
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 401)) {
      shell?.showError(`Could not sign out: ${describeError(e)}`);
      return;
    }
  }
  signedOut('You have signed out.');
}

api.onUnauthorized = () => {
  if (ctx) signedOut('Your session has ended. Sign in again to continue.');
};

window.addEventListener('hashchange', () => showRoute(true));

async function start(): Promise<void> {
  try {
    signedIn(await api.getSession(true));
  } catch (e) {
    const unreachable = !(e instanceof ApiError && e.status === 401);
    signedOut(unreachable ? describeError(e) : null);
  }
}

void start();
