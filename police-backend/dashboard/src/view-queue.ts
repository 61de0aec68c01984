/** The alert queue: reviewable, unresolved alerts in the server's order, patched live in place. */
import { fill, h, orDash } from './dom.js';
import { gapEl, kindLabel, timeAgo } from './format.js';
import type { QueueChange } from './queue-store.js';
import { alertHref } from './router.js';
import type { Alert } from './types.js';
import type { Context, View } from './view.js';
import { errorBox, loading, pageHeading } from './view.js';

const HIGHLIGHT_MS = 6_000;

/** The badge showing an alert's state; the text is the API's value, CSS capitalises it. */
export const stateBadge = (state: string, testid?: string): HTMLElement =>
  h('span', { class: `state state-${state}`, 'data-state': state, 'data-testid': testid }, state);

export const addressText = (alert: { address: string | null }): string =>
  alert.address ?? 'Unknown address (beacon not registered here)';

function itemBody(alert: Alert): HTMLElement[] {
  return [
    h(
      'span',
      { class: 'qi-top' },
      h('span', { class: `kind kind-${alert.kind}` }, kindLabel(alert.kind)),
      stateBadge(alert.state),
    ),
    h('span', { class: 'qi-address' }, addressText(alert)),
    h('span', { class: 'qi-meta' }, `Case ${orDash(alert.caseRef)} · Beacon ${alert.beaconId}`),
    h(
      'span',
      { class: 'qi-times' },
      h('span', null, 'Last proof of presence: ', timeAgo(alert.lastPresenceAt)),
      h('span', null, 'Gap: ', gapEl(alert)),
    ),
  ];
}

function queueItem(alert: Alert): HTMLLIElement {
  return h(
    'li',
    { class: 'queue-entry', 'data-alert-id': alert.id },
    h(
      'a',
      {
        href: alertHref(alert.id),
        class: `card queue-item urgency-${alert.urgency}`,
        'data-testid': 'queue-item',
        'data-alert-id': alert.id,
      },
      itemBody(alert),
    ),
  );
}

function highlight(el: Element, cls: string): void {
  el.classList.remove('is-new', 'is-updated');
  // Restart the animation when the same item changes twice in a row.
  void (el as HTMLElement).offsetWidth;
  el.classList.add(cls);
  setTimeout(() => el.classList.remove(cls), HIGHLIGHT_MS);
}

export function queuePage(ctx: Context): View {
  const list = h('ol', { class: 'queue', 'data-testid': 'queue', 'aria-label': 'Open alerts' });
  const count = h('p', { class: 'muted', role: 'status' });
  const body = h('div', null, loading('the alert queue'));
  const el = h(
    'section',
    { class: 'page', 'aria-labelledby': 'queue-title' },
    h('div', { class: 'page-head' }, pageHeading('Alert queue'), count),
    h(
      'p',
      { class: 'hint' },
      'Most urgent first, then the oldest. New alerts appear here as they arrive.',
    ),
    body,
  );
  el.querySelector('h1')?.setAttribute('id', 'queue-title');

  const findItem = (id: string): HTMLLIElement | undefined =>
    [...list.children].find(
      (li): li is HTMLLIElement => (li as HTMLElement).dataset['alertId'] === id,
    );

  const showCount = () => {
    const n = ctx.queue.list().length;
    count.textContent = n === 0 ? 'No open alerts.' : n === 1 ? '1 open alert' : `${n} open alerts`;
  };

  const renderAll = () => {
    if (!ctx.queue.loaded) return;
    fill(list, ctx.queue.list().map(queueItem));
    fill(
      body,
      list,
      ctx.queue.list().length === 0 &&
        h('p', { class: 'empty' }, 'Nothing to review. New alerts will appear here.'),
    );
    showCount();
  };

  const onChange = (change: QueueChange) => {
    if (change.type === 'reset') return renderAll();
    if (!list.isConnected) return renderAll();
    if (change.type === 'added') {
      const item = queueItem(change.alert);
      list.insertBefore(item, list.children[change.index] ?? null);
      body.querySelector('.empty')?.remove();
      highlight(item, 'is-new');
    } else if (change.type === 'updated') {
      const item = findItem(change.alert.id);
      const link = item?.querySelector('a');
      if (!item || !link) return renderAll();
      // Same link element, new contents: keyboard focus stays where it is.
      fill(link, itemBody(change.alert));
      link.className = `card queue-item urgency-${change.alert.urgency}`;
      highlight(item, 'is-updated');
    } else {
      const item = findItem(change.alert.id);
      if (item?.contains(document.activeElement)) {
        const next = (item.nextElementSibling ?? item.previousElementSibling)?.querySelector('a');
        (next ?? el.querySelector<HTMLElement>('h1'))?.focus();
      }
      item?.remove();
      if (ctx.queue.list().length === 0) renderAll();
    }
    showCount();
  };

  const unsubscribe = ctx.queue.subscribe(onChange);
  // The store is loaded at sign-in and after every reconnect, and kept current in between.
  const load = () => {
    if (!ctx.queue.loaded) fill(body, loading('the alert queue'));
    ctx.queue.ensure(() => ctx.api.queue()).catch((e: unknown) => fill(body, errorBox(e, load)));
  };
  renderAll();
  load();

  return { title: 'Alert queue', el, dispose: unsubscribe };
}
