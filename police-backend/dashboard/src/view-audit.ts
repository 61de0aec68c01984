/** The audit log (supervisors): the hash chain's verification first, then the latest entries. */
import { fill, h, orDash } from './dom.js';
import { codeText, timeAt } from './format.js';
import type { AuditEntry, AuditVerify } from './types.js';
import type { Context, View } from './view.js';
import { errorBox, loading, pageHeading } from './view.js';

const LIMIT = 200;

/** `detail` as one line of text, whatever shape the server gives it. */
export function detailText(detail: unknown): string {
  if (detail === null || detail === undefined || detail === '') return '—';
  let value = detail;
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value);
    } catch {
      return value as string;
    }
  }
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    const pairs = Object.entries(value as Record<string, unknown>).map(
      ([k, v]) => `${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`,
    );
    return pairs.length ? pairs.join(' · ') : '—';
  }
  return typeof value === 'string' ? value : JSON.stringify(value);
}

function verification(v: AuditVerify): HTMLElement {
  if (v.ok) {
    return h(
      'div',
      {
        class: 'verify verify-ok',
        role: 'status',
        'data-testid': 'audit-verify',
        'data-ok': 'true',
      },
      h('p', { class: 'verify-title' }, '✓ Audit chain verified'),
      h('p', null, `All ${v.checked} entries are intact: every entry links to the one before it.`),
    );
  }
  return h(
    'div',
    {
      class: 'verify verify-broken',
      role: 'alert',
      'data-testid': 'audit-verify',
      'data-ok': 'false',
    },
    h('p', { class: 'verify-title' }, '✗ Audit chain BROKEN'),
    h(
      'p',
      null,
      v.firstBroken === null
        ? `The check of ${v.checked} entries failed.`
        : `Entry #${v.firstBroken} does not match the chain (${v.checked} entries checked): it or an earlier entry was changed or removed.`,
      ' Report this to the system operators; do not rely on the log from that entry on.',
    ),
  );
}

function row(e: AuditEntry): HTMLTableRowElement {
  return h(
    'tr',
    { 'data-testid': 'audit-entry', 'data-seq': e.seq },
    h('td', { 'data-label': '#' }, String(e.seq)),
    h('td', { 'data-label': 'Time' }, timeAt(e.at)),
    h('td', { 'data-label': 'Officer' }, orDash(e.officer)),
    h('td', { 'data-label': 'Action' }, codeText(e.action)),
    h('td', { 'data-label': 'Subject' }, orDash(e.subject)),
    h('td', { 'data-label': 'Detail', class: 'detail' }, detailText(e.detail)),
  );
}

export function auditPage(ctx: Context): View {
  let disposed = false;
  const body = h('div', null, loading('the audit log'));

  if (ctx.session.role !== 'supervisor') {
    fill(body, h('p', { class: 'notice notice-info' }, 'Only supervisors can see the audit log.'));
  }

  const load = () => {
    if (ctx.session.role !== 'supervisor') return;
    ctx.api.audit(LIMIT).then(
      ({ entries, verify }) => {
        if (disposed) return;
        fill(
          body,
          verification(verify),
          h(
            'p',
            { class: 'muted' },
            entries.length
              ? `The latest ${entries.length} entries, newest first.`
              : 'The log is empty.',
          ),
          entries.length > 0 &&
            h(
              'div',
              { class: 'table-wrap' },
              h(
                'table',
                { class: 'table table-stack', 'data-testid': 'audit' },
                h('caption', { class: 'visually-hidden' }, 'Audit log entries'),
                h(
                  'thead',
                  null,
                  h(
                    'tr',
                    null,
                    ['#', 'Time', 'Officer', 'Action', 'Subject', 'Detail'].map((c) =>
                      h('th', { scope: 'col' }, c),
                    ),
                  ),
                ),
                h('tbody', null, [...entries].sort((a, b) => b.seq - a.seq).map(row)),
              ),
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
    title: 'Audit log',
    el: h(
      'section',
      { class: 'page' },
      h('div', { class: 'page-head' }, pageHeading('Audit log')),
      body,
    ),
    refresh: load,
    dispose() {
      disposed = true;
    },
  };
}
