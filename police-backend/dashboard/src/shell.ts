/** The frame around every signed-in page: header, navigation, live-connection banner, main. */
import { fill, h } from './dom.js';
import type { LiveStatus } from './live.js';
import type { RouteName } from './router.js';
import type { Session } from './types.js';

interface NavItem {
  readonly name: RouteName;
  readonly href: string;
  readonly label: string;
  readonly supervisorOnly?: boolean;
}

const NAV: readonly NavItem[] = [
  { name: 'queue', href: '#/queue', label: 'Alert queue' },
  { name: 'beacons', href: '#/beacons', label: 'Beacons' },
  { name: 'history', href: '#/history', label: 'History' },
  { name: 'stats', href: '#/stats', label: 'Chart' },
  { name: 'audit', href: '#/audit', label: 'Audit log', supervisorOnly: true },
];

export interface Shell {
  readonly root: HTMLElement;
  readonly main: HTMLElement;
  setActive(name: RouteName): void;
  setQueueCount(count: number | null): void;
  setLive(status: LiveStatus): void;
  announce(text: string): void;
  showError(text: string | null): void;
}

export function createShell(session: Session, onSignOut: () => void): Shell {
  const links = new Map<RouteName, HTMLAnchorElement>();
  const badge = h('span', { class: 'badge', hidden: true });
  const navList = h('ul', { class: 'nav-list' });
  for (const item of NAV) {
    if (item.supervisorOnly && session.role !== 'supervisor') continue;
    const link = h(
      'a',
      { href: item.href, class: 'nav-link', 'data-testid': `nav-${item.name}` },
      item.label,
      item.name === 'queue' ? badge : null,
    );
    links.set(item.name, link);
    navList.append(h('li', null, link));
  }

  const live = h(
    'div',
    {
      class: 'live live-connecting',
      role: 'status',
      'aria-live': 'polite',
      'data-testid': 'live-status',
      'data-state': 'connecting',
    },
    'Connecting to live updates…',
  );
  const announcer = h('div', { class: 'visually-hidden', 'aria-live': 'polite' });
  const globalError = h('div', {
    class: 'notice notice-error global-error',
    role: 'alert',
    hidden: true,
  });
  const main = h('main', { id: 'main', class: 'main' });

  const root = h(
    'div',
    { class: 'app' },
    h('a', { href: '#main', class: 'skip-link', onclick: skipToMain }, 'Skip to content'),
    h(
      'header',
      { class: 'header' },
      h(
        'div',
        { class: 'header-inner' },
        h('p', { class: 'brand' }, 'SmartBeacon ', h('span', { class: 'brand-sub' }, 'Police')),
        h('nav', { class: 'nav', 'aria-label': 'Main' }, navList),
        h(
          'div',
          { class: 'user' },
          h(
            'span',
            { class: 'user-name', 'data-testid': 'current-user' },
            session.username,
            h('span', { class: 'user-role' }, ` (${session.role})`),
          ),
          h(
            'button',
            {
              type: 'button',
              class: 'btn btn-quiet',
              'data-testid': 'signout',
              onclick: onSignOut,
            },
            'Sign out',
          ),
        ),
      ),
    ),
    live,
    globalError,
    main,
    announcer,
  );

  let backTimer: ReturnType<typeof setTimeout> | null = null;
  let lastState: string | null = null;

  return {
    root,
    main,
    setActive(name) {
      for (const [key, link] of links) {
        if (key === name) link.setAttribute('aria-current', 'page');
        else link.removeAttribute('aria-current');
      }
    },
    setQueueCount(count) {
      badge.hidden = count === null;
      fill(badge, String(count ?? ''), h('span', { class: 'visually-hidden' }, ' open'));
    },
    setLive(status) {
      // After a drop, "connecting" is still "down" for the officer: keep saying so.
      const down =
        status.state === 'disconnected' || (status.state === 'connecting' && status.wasConnected);
      const state = down ? 'disconnected' : status.state;
      if (state === lastState) return;
      lastState = state;
      if (backTimer !== null) clearTimeout(backTimer);
      backTimer = null;
      live.dataset['state'] = state;
      if (state === 'disconnected') {
        live.className = 'live live-down';
        fill(
          live,
          h('strong', null, 'Live updates disconnected — reconnecting…'),
          ' New alerts will not appear until the connection is back; what you see may be out of date.',
        );
      } else if (state === 'connected' && status.wasConnected) {
        live.className = 'live live-back';
        fill(
          live,
          h('strong', null, 'Live updates connected again.'),
          ' The page has been refreshed.',
        );
        backTimer = setTimeout(() => {
          live.className = 'live live-up';
        }, 10_000);
      } else if (state === 'connected') {
        live.className = 'live live-up';
        fill(live, 'Live updates connected');
      } else {
        live.className = 'live live-connecting';
        fill(live, 'Connecting to live updates…');
      }
    },
    announce(text) {
      announcer.textContent = '';
      setTimeout(() => {
        announcer.textContent = text;
      }, 50);
    },
    showError(text) {
      globalError.hidden = text === null;
      globalError.textContent = text ?? '';
    },
  };
}

/** The skip link moves focus, not just the scroll position, and leaves the hash route alone. */
function skipToMain(event: Event): void {
  event.preventDefault();
  const target = document.querySelector<HTMLElement>('#main h1') ?? document.getElementById('main');
  target?.focus();
}
