/** A stacked bar chart of alerts per day by outcome, drawn as plain SVG (no library, no styles inline). */
import { h, s } from './dom.js';
import { OUTCOME_LABEL, formatDay } from './format.js';
import type { DailyStat, DayBucket } from './types.js';
import { DAY_BUCKETS } from './types.js';

const W = 720;
const H = 320;
const PAD = { top: 16, right: 12, bottom: 44, left: 44 };

/** 1, 2, 5, 10, 20, 50… the smallest step giving at most `maxTicks` ticks up to `max`. */
export function niceStep(max: number, maxTicks = 5): number {
  if (max <= maxTicks) return 1;
  const raw = max / maxTicks;
  const pow = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (m * pow >= raw) return m * pow;
  return 10 * pow;
}

export const count = (d: DailyStat, bucket: DayBucket): number => d.byOutcome[bucket] ?? 0;

export function legend(): HTMLElement {
  return h(
    'ul',
    { class: 'legend', 'aria-label': 'Legend' },
    DAY_BUCKETS.map((b) =>
      h(
        'li',
        null,
        s(
          'svg',
          { class: 'swatch', viewBox: '0 0 10 10', 'aria-hidden': 'true', focusable: 'false' },
          s('rect', { class: `bar-${b}`, width: 10, height: 10 }),
        ),
        OUTCOME_LABEL[b],
      ),
    ),
  );
}

export function stackedBars(
  days: readonly DailyStat[],
  titleId: string,
  descId: string,
  desc: string,
): SVGSVGElement {
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const max = Math.max(1, ...days.map((d) => d.total));
  const step = niceStep(max);
  const top = Math.ceil(max / step) * step;
  const y = (v: number) => PAD.top + plotH - (v / top) * plotH;
  const band = plotW / Math.max(1, days.length);
  const barW = Math.max(2, band * 0.72);
  const labelEvery = Math.max(1, Math.ceil(days.length / 10));

  const grid: SVGElement[] = [];
  for (let v = 0; v <= top; v += step) {
    grid.push(
      s('line', { class: 'grid', x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v) }),
      s('text', { class: 'tick', x: PAD.left - 6, y: y(v) + 4, 'text-anchor': 'end' }, String(v)),
    );
  }

  const bars = days.map((d, i) => {
    const x = PAD.left + i * band + (band - barW) / 2;
    let base = 0;
    const parts: SVGElement[] = [];
    for (const b of DAY_BUCKETS) {
      const n = count(d, b);
      if (n <= 0) continue;
      parts.push(
        s(
          'rect',
          { class: `bar-${b}`, x, width: barW, y: y(base + n), height: y(base) - y(base + n) },
          s('title', null, `${formatDay(d.day)}: ${n} ${OUTCOME_LABEL[b].toLowerCase()}`),
        ),
      );
      base += n;
    }
    const label =
      (days.length - 1 - i) % labelEvery === 0 // the latest day always has its label
        ? s(
            'text',
            { class: 'tick', x: x + barW / 2, y: H - PAD.bottom + 18, 'text-anchor': 'middle' },
            formatDay(d.day),
          )
        : null;
    return s('g', null, parts, label);
  });

  return s(
    'svg',
    {
      class: 'chart',
      viewBox: `0 0 ${W} ${H}`,
      role: 'img',
      'aria-labelledby': `${titleId} ${descId}`,
      'data-testid': 'stats-chart',
    },
    s('title', { id: titleId }, 'Alerts per day by outcome'),
    s('desc', { id: descId }, desc),
    grid,
    s('line', { class: 'axis', x1: PAD.left, x2: W - PAD.right, y1: y(0), y2: y(0) }),
    bars,
    s('text', { class: 'axis-label', x: PAD.left, y: H - 6 }, 'Day (UTC)'),
  );
}
