/** The chart page: alerts per UTC day by outcome, as SVG bars and as a table. */
import { legend, count, stackedBars } from './chart.js';
import { fill, h } from './dom.js';
import { OUTCOME_LABEL, formatDay } from './format.js';
import { withQuery } from './router.js';
import type { DailyStat } from './types.js';
import { DAY_BUCKETS } from './types.js';
import type { Context, View } from './view.js';
import { errorBox, loading, pageHeading } from './view.js';

const RANGES = [7, 14, 30, 90];

export function summary(days: readonly DailyStat[]): string {
  const total = days.reduce((sum, d) => sum + d.total, 0);
  if (total === 0) return `No alerts in the last ${days.length} days.`;
  const parts = DAY_BUCKETS.map((b) => {
    const n = days.reduce((sum, d) => sum + count(d, b), 0);
    return `${n} ${OUTCOME_LABEL[b].toLowerCase()}`;
  });
  return `${total} alert${total === 1 ? '' : 's'} in the last ${days.length} days: ${parts.join(', ')}.`;
}

function table(days: readonly DailyStat[]): HTMLElement {
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      { class: 'table table-numbers', 'data-testid': 'stats-table' },
      h('caption', null, 'Alerts per day by outcome (UTC days, oldest first)'),
      h(
        'thead',
        null,
        h(
          'tr',
          null,
          h('th', { scope: 'col' }, 'Day'),
          DAY_BUCKETS.map((b) => h('th', { scope: 'col' }, OUTCOME_LABEL[b])),
          h('th', { scope: 'col' }, 'Total'),
        ),
      ),
      h(
        'tbody',
        null,
        days.map((d) =>
          h(
            'tr',
            null,
            h('th', { scope: 'row' }, h('time', { datetime: d.day }, d.day)),
            DAY_BUCKETS.map((b) => h('td', null, String(count(d, b)))),
            h('td', null, String(d.total)),
          ),
        ),
      ),
    ),
  );
}

export function statsPage(ctx: Context, params: URLSearchParams): View {
  let disposed = false;
  const wanted = Number(params.get('days') ?? 30);
  const days = RANGES.includes(wanted) ? wanted : 30;
  const body = h('div', null, loading('the chart'));

  const range = h(
    'select',
    { id: 'stats-days', 'data-testid': 'stats-days' },
    RANGES.map((n) => h('option', { value: n }, `Last ${n} days`)),
  );
  range.value = String(days);
  range.addEventListener('change', () => {
    location.hash = withQuery('#/stats', new URLSearchParams({ days: range.value }));
  });

  const load = () => {
    ctx.api.dailyStats(days).then(
      (stats) => {
        if (disposed) return;
        const text = summary(stats);
        fill(
          body,
          h('p', { class: 'summary', 'data-testid': 'stats-summary' }, text),
          h(
            'figure',
            { class: 'chart-figure' },
            stackedBars(
              stats,
              'chart-title',
              'chart-desc',
              `${text} Stacked bars, one per day from ${formatDay(stats[0]?.day ?? '')} to ${formatDay(stats[stats.length - 1]?.day ?? '')}; the same numbers are in the table below.`,
            ),
            h('figcaption', null, legend()),
          ),
          h(
            'details',
            { class: 'chart-table' },
            h('summary', null, 'The same data as a table'),
            table(stats),
          ),
        );
      },
      (e: unknown) => {
        if (!disposed) fill(body, errorBox(e, load));
      },
    );
  };
  load();

  return {
    title: 'Chart',
    el: h(
      'section',
      { class: 'page' },
      h('div', { class: 'page-head' }, pageHeading('Alerts per day')),
      h('div', { class: 'field field-inline' }, h('label', { for: 'stats-days' }, 'Period'), range),
      body,
    ),
    refresh: load,
    dispose() {
      disposed = true;
    },
  };
}
