/**
 * The alert queue: reviewable, unresolved alerts in the server's order, patched live in place,
 * in two tabs — violations and beacon maintenance — each with its count.
 */
import {
  headline,
  needsVisit,
  occurrencesText,
  reasonText,
  faultReasons,
  recoveryText,
} from './alert-text.js';
import { fill, h, orDash } from './dom.js';
import { QUEUE_LABEL, gapEl, timeAgo, timeAt } from './format.js';
import type { QueueChange } from './queue-store.js';
import { QUEUE_PAGE } from './queue-store.js';
import { alertHref, queueHref } from './router.js';
import type { Alert, Queue } from './types.js';
import { QUEUES } from './types.js';
import type { Context, View } from './view.js';
import { errorBox, loading, pageHeading } from './view.js';

const HIGHLIGHT_MS = 6_000;

/** The badge showing an alert's state; the text is the API's value, CSS capitalises it. */
export const stateBadge = (state: string, testid?: string): HTMLElement =>
  h('span', { class: `state state-${state}`, 'data-state': state, 'data-testid': testid }, state);

export const addressText = (alert: { address: string | null }): string =>
  alert.address ?? 'Unknown address (beacon not registered here)';

/** Small marks beside the headline: repeats, a cleared condition, a visit needed today. */
export function alertMarks(alert: Alert): HTMLElement[] {
  const marks: HTMLElement[] = [];
  if (needsVisit(alert))
    marks.push(
      h('span', { class: 'mark mark-urgent', 'data-testid': 'needs-visit' }, 'Visit today'),
    );
  const times = occurrencesText(alert);
  if (times)
    marks.push(
      h(
        'span',
        {
          class: 'mark',
          'data-testid': 'occurrences',
          title: `Happened ${alert.occurrences} times`,
        },
        times,
      ),
    );
  if (alert.conditionClearedAt !== null)
    marks.push(
      h('span', { class: 'mark mark-ok', 'data-testid': 'condition-cleared' }, 'Condition cleared'),
    );
  return marks;
}

/** The facts a row shows under the address: presence for violations, the cause for maintenance. */
function itemTimes(alert: Alert): HTMLElement {
  if (alert.queue === 'maintenance') {
    const reasons = faultReasons(alert);
    return h(
      'span',
      { class: 'qi-times' },
      reasons.length > 1 &&
        h('span', null, reasons.map((r) => reasonText(r, alert.detail)).join(' · ')),
      h('span', null, 'Since: ', timeAgo(alert.occurredAt)),
      alert.conditionClearedAt !== null &&
        h('span', null, 'Cleared: ', timeAt(alert.conditionClearedAt)),
    );
  }
  const recovery = recoveryText(alert);
  return h(
    'span',
    { class: 'qi-times' },
    h('span', null, 'Last proof of presence: ', timeAgo(alert.lastPresenceAt)),
    h('span', null, 'Gap: ', gapEl(alert)),
    recovery && h('span', { class: 'recovery', 'data-testid': 'recovery' }, recovery),
  );
}

function itemBody(alert: Alert): HTMLElement[] {
  return [
    h(
      'span',
      { class: 'qi-top' },
      h('span', { class: `kind kind-${alert.kind}`, 'data-testid': 'headline' }, headline(alert)),
      alertMarks(alert),
      stateBadge(alert.state),
    ),
    h('span', { class: 'qi-address' }, addressText(alert)),
    h('span', { class: 'qi-meta' }, `Case ${orDash(alert.caseRef)} · Beacon ${alert.beaconId}`),
    itemTimes(alert),
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

export function queuePage(ctx: Context, queue: Queue): View {
  const inTab = (a: Alert) => a.queue === queue;
  const shown = () => ctx.queue.list().filter(inTab);
  const list = h('ol', {
    class: 'queue',
    'data-testid': 'queue',
    'data-queue': queue,
    'aria-label': `Open alerts: ${QUEUE_LABEL[queue]}`,
  });
  const count = h('p', { class: 'muted', role: 'status' });
  const counts = new Map<Queue, HTMLElement>();
  const tabs = h(
    'nav',
    { class: 'tabs', 'aria-label': 'Queues' },
    QUEUES.map((q) => {
      const n = h('span', { class: 'tab-count' });
      counts.set(q, n);
      return h(
        'a',
        {
          href: queueHref(q),
          class: 'tab',
          'data-testid': `queue-tab-${q}`,
          'aria-current': q === queue ? 'page' : undefined,
        },
        QUEUE_LABEL[q],
        ' ',
        n,
      );
    }),
  );
  const body = h('div', null, loading('the alert queue'));
  const el = h(
    'section',
    { class: 'page', 'aria-labelledby': 'queue-title' },
    h('div', { class: 'page-head' }, pageHeading('Alert queue'), count),
    tabs,
    h(
      'p',
      { class: 'hint' },
      queue === 'violation'
        ? 'Confirmed absences from home, most urgent first, then the oldest. New alerts appear here as they arrive.'
        : 'Beacons that need attention (battery, clock, restarts, possible spoofing): most urgent first, then the oldest.',
    ),
    body,
  );
  el.querySelector('h1')?.setAttribute('id', 'queue-title');

  const findItem = (id: string): HTMLLIElement | undefined =>
    [...list.children].find(
      (li): li is HTMLLIElement => (li as HTMLElement).dataset['alertId'] === id,
    );

  const showCount = () => {
    for (const [q, el] of counts) {
      const n = ctx.queue.loaded ? ctx.queue.count(q) : null;
      el.textContent = n === null ? '' : `(${n})`;
      el.parentElement?.setAttribute('data-count', n === null ? '' : String(n));
    }
    const n = ctx.queue.count(queue);
    count.textContent = n === 0 ? 'No open alerts.' : n === 1 ? '1 open alert' : `${n} open alerts`;
    const rows = shown().length;
    more.hidden = !ctx.queue.loaded || !ctx.queue.hasMore(queue);
    moreText.textContent = `Showing the first ${rows} of ${n}, most urgent first. `;
  };

  // A long queue is shown a page at a time: drawing thousands of rows would take seconds.
  const moreButton = h(
    'button',
    { type: 'button', class: 'btn', 'data-testid': 'queue-more', onclick: () => showMore() },
    'Show more',
  );
  const moreText = h('span', { 'data-testid': 'queue-shown' });
  const more = h('p', { class: 'queue-more', hidden: true }, moreText, moreButton);
  const showMore = () => {
    fill(more, moreText, moreButton);
    moreButton.disabled = true;
    ctx.queue
      .loadMore(queue, (after) => ctx.api.queueAfter(queue, after, QUEUE_PAGE))
      .catch((e: unknown) => fill(more, moreText, moreButton, errorBox(e, showMore)))
      .finally(() => (moreButton.disabled = false));
  };

  const renderAll = () => {
    showCount();
    if (!ctx.queue.loaded) return;
    fill(list, shown().map(queueItem));
    fill(
      body,
      list,
      shown().length === 0 &&
        !ctx.queue.hasMore(queue) &&
        h(
          'p',
          { class: 'empty' },
          queue === 'violation'
            ? 'No violations to review. New alerts will appear here.'
            : 'No beacon needs maintenance.',
        ),
      more,
    );
  };

  const onChange = (change: QueueChange) => {
    if (change.type === 'reset') return renderAll();
    if (change.type === 'counts') return showCount();
    if (!list.isConnected) return renderAll();
    if (change.type === 'page') {
      if (change.queue !== queue) return showCount();
      const first = change.alerts[0];
      renderAll();
      // Keyboard users continue where the new rows begin.
      (first ? findItem(first.id)?.querySelector('a') : null)?.focus();
      return;
    }
    if (change.type === 'added') {
      if (!inTab(change.alert)) return showCount();
      const item = queueItem(change.alert);
      // The store's index counts both queues: place the item among this tab's only.
      const next = shown().find((_a, i, all) => all[i - 1]?.id === change.alert.id);
      list.insertBefore(item, next ? (findItem(next.id) ?? null) : null);
      body.querySelector('.empty')?.remove();
      highlight(item, 'is-new');
    } else if (change.type === 'updated') {
      if (!inTab(change.alert)) return showCount();
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
      if (shown().length === 0) renderAll();
    }
    showCount();
  };

  const unsubscribe = ctx.queue.subscribe(onChange);
  // The store is loaded at sign-in and after every reconnect, and kept current in between.
  const load = () => {
    if (!ctx.queue.loaded) fill(body, loading('the alert queue'));
    ctx.queue
      .ensure(() => ctx.api.queue(QUEUE_PAGE))
      .catch((e: unknown) => fill(body, errorBox(e, load)));
  };
  renderAll();
  load();

  return { title: 'Alert queue', el, dispose: unsubscribe };
}
