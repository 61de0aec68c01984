/** History: every reviewable alert, newest first, filtered by date, kind and outcome. */
import { headline } from './alert-text.js';
import { fill, h, orDash } from './dom.js';
import { OUTCOME_LABEL, gapEl, kindLabel, outcomeLabel, timeAt } from './format.js';
import { alertHref, withQuery } from './router.js';
import type { Alert } from './types.js';
import { OUTCOMES, REVIEWABLE_KINDS } from './types.js';
import type { Context, View } from './view.js';
import { errorBox, loading, pageHeading } from './view.js';
import { addressText, alertMarks, stateBadge } from './view-queue.js';

const SERVER_LIMIT = 500;
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

/** A `YYYY-MM-DD` from a date input → local midnight in ms (`endOfDay`: the last ms of it). */
export function dayToMs(value: string, endOfDay: boolean): number | null {
  const m = DATE.exec(value);
  if (!m) return null;
  const start = new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]) + (endOfDay ? 1 : 0));
  const ms = start.getTime() - (endOfDay ? 1 : 0);
  return Number.isNaN(ms) ? null : ms;
}

/** The dashboard's filters (dates as typed) → the API's query (ms on occurredAt, `to` inclusive). */
export function historyQuery(filters: URLSearchParams): URLSearchParams {
  const q = new URLSearchParams();
  const from = dayToMs(filters.get('from') ?? '', false);
  const to = dayToMs(filters.get('to') ?? '', true);
  if (from !== null) q.set('from', String(from));
  if (to !== null) q.set('to', String(to));
  const kind = filters.get('kind') ?? '';
  if ((REVIEWABLE_KINDS as readonly string[]).includes(kind)) q.set('kind', kind);
  const outcome = filters.get('outcome') ?? '';
  if ((OUTCOMES as readonly string[]).includes(outcome)) q.set('outcome', outcome);
  return q;
}

function select(
  id: string,
  label: string,
  any: string,
  options: [string, string][],
  value: string,
) {
  const el = h(
    'select',
    { id, name: id.replace('history-', ''), 'data-testid': id },
    h('option', { value: '' }, any),
    options.map(([v, text]) => h('option', { value: v }, text)),
  );
  el.value = options.some(([v]) => v === value) ? value : '';
  return { el, field: h('div', { class: 'field' }, h('label', { for: id }, label), el) };
}

function dateInput(id: string, label: string, value: string) {
  const el = h('input', { id, name: id.replace('history-', ''), type: 'date', 'data-testid': id });
  el.value = DATE.test(value) ? value : '';
  return { el, field: h('div', { class: 'field' }, h('label', { for: id }, label), el) };
}

function row(a: Alert): HTMLTableRowElement {
  return h(
    'tr',
    { 'data-testid': 'history-item', 'data-alert-id': a.id },
    h('td', { 'data-label': 'Occurred' }, timeAt(a.occurredAt)),
    h('td', { 'data-label': 'Address' }, h('a', { href: alertHref(a.id) }, addressText(a))),
    h('td', { 'data-label': 'Case' }, orDash(a.caseRef)),
    h('td', { 'data-label': 'Kind' }, headline(a), ' ', alertMarks(a)),
    h('td', { 'data-label': 'State' }, stateBadge(a.state)),
    h('td', { 'data-label': 'Outcome' }, outcomeLabel(a.outcome)),
    h('td', { 'data-label': 'Gap' }, gapEl(a)),
  );
}

export function historyPage(ctx: Context, params: URLSearchParams): View {
  let disposed = false;
  let request = 0;
  const from = dateInput('history-from', 'From (date)', params.get('from') ?? '');
  const to = dateInput('history-to', 'To (date, inclusive)', params.get('to') ?? '');
  const kind = select(
    'history-kind',
    'Kind',
    'Any kind',
    REVIEWABLE_KINDS.map((k) => [k, kindLabel(k)]),
    params.get('kind') ?? '',
  );
  const outcome = select(
    'history-outcome',
    'Outcome',
    'Any outcome',
    OUTCOMES.map((o) => [o, OUTCOME_LABEL[o]]),
    params.get('outcome') ?? '',
  );
  const status = h('p', { class: 'muted', role: 'status' });
  const results = h('div', null);

  const filters = (): URLSearchParams =>
    new URLSearchParams({
      from: from.el.value,
      to: to.el.value,
      kind: kind.el.value,
      outcome: outcome.el.value,
    });

  const form = h(
    'form',
    { class: 'filters', 'aria-label': 'Filters', novalidate: true },
    h('div', { class: 'filter-grid' }, from.field, to.field, kind.field, outcome.field),
    h(
      'div',
      { class: 'button-row' },
      h(
        'button',
        { type: 'submit', class: 'btn btn-primary', 'data-testid': 'history-apply' },
        'Apply filters',
      ),
      h('button', { type: 'reset', class: 'btn' }, 'Clear'),
    ),
  );
  const apply = () => {
    const fromMs = dayToMs(from.el.value, false);
    const toMs = dayToMs(to.el.value, true);
    if (fromMs !== null && toMs !== null && fromMs > toMs) {
      status.textContent = 'The “from” date is after the “to” date.';
      from.el.focus();
      return;
    }
    // Keep the filters in the address (bookmarkable, Back works) without rebuilding the page.
    const hash = withQuery('#/history', filters());
    if (location.hash !== hash) history.pushState(null, '', hash);
    load();
  };
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    apply();
  });
  form.addEventListener('reset', () => setTimeout(apply, 0));

  function load(): void {
    const mine = ++request;
    status.textContent = 'Loading…';
    results.setAttribute('aria-busy', 'true');
    ctx.api.history(historyQuery(filters())).then(
      (alerts) => {
        if (disposed || mine !== request) return;
        results.removeAttribute('aria-busy');
        const n = alerts.length;
        status.textContent =
          n === 0
            ? 'No alerts match these filters.'
            : n >= SERVER_LIMIT
              ? `Showing the newest ${n} alerts; narrow the filters to see older ones.`
              : `${n} alert${n === 1 ? '' : 's'}, newest first.`;
        fill(
          results,
          n > 0 &&
            h(
              'div',
              { class: 'table-wrap' },
              h(
                'table',
                { class: 'table table-stack', 'data-testid': 'history' },
                h('caption', { class: 'visually-hidden' }, 'Alerts, newest first'),
                h(
                  'thead',
                  null,
                  h(
                    'tr',
                    null,
                    ['Occurred', 'Address', 'Case', 'Kind', 'State', 'Outcome', 'Gap'].map((c) =>
                      h('th', { scope: 'col' }, c),
                    ),
                  ),
                ),
                h('tbody', null, alerts.map(row)),
              ),
            ),
        );
      },
      (e: unknown) => {
        if (disposed || mine !== request) return;
        results.removeAttribute('aria-busy');
        status.textContent = '';
        fill(results, errorBox(e, load));
      },
    );
  }

  const el = h(
    'section',
    { class: 'page' },
    h('div', { class: 'page-head' }, pageHeading('History')),
    form,
    status,
    results,
  );
  fill(results, loading('the history'));
  load();

  return {
    title: 'History',
    el,
    onAlert(alert) {
      // Patch a row in place; new alerts wait for the next search (the filters decide).
      const old = results.querySelector<HTMLElement>(`tr[data-alert-id="${CSS.escape(alert.id)}"]`);
      old?.replaceWith(row(alert));
    },
    refresh: load,
    dispose() {
      disposed = true;
    },
  };
}
