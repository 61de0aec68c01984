/** One beacon: its status and its authorised absences (schedule, list, cancel). */
import { describeError } from './api.js';
import { fill, h } from './dom.js';
import { BEACON_STATUS_HINT, codeText, formatAbsolute, formatDuration, timeAt } from './format.js';
import type { Absence, AbsenceDelivery, Beacon } from './types.js';
import type { Context, View } from './view.js';
import { errorBox, loading, pageHeading } from './view.js';

const MINUTE = 60_000;
const MAX_MS = 24 * 60 * MINUTE;
/** A start the officer left at "now" a few minutes ago still means now. */
const START_DRIFT_MS = 5 * MINUTE;

const DELIVERY_TEXT: Record<AbsenceDelivery, string> = {
  pending: 'Waiting for the app backend to confirm',
  scheduled: 'Scheduled: no alert during it',
  refused: 'Refused by the app backend',
  cancel_pending: 'Cancelling: waiting for the app backend',
  cancelled: 'Cancelled',
  cancel_refused: 'Cancellation refused by the app backend',
};

/** `YYYY-MM-DDTHH:MM` in local time, for datetime-local inputs. */
export function toLocalInput(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

/** A datetime-local value (local time) → ms, or null. */
export function fromLocalInput(value: string): number | null {
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$/.test(value)) return null;
  const ms = new Date(value).getTime();
  return Number.isNaN(ms) ? null : ms;
}

/** The app backend's rules, checked here first so the officer hears why at once. */
export function absenceProblem(startsAt: number, endsAt: number, now: number): string | null {
  if (endsAt <= startsAt) return 'The end must be after the start.';
  if (endsAt - startsAt > MAX_MS) return 'An absence can last at most 24 hours.';
  if (endsAt <= now) return 'This absence would already be over.';
  if (startsAt < now - MINUTE) return 'An absence cannot start in the past.';
  return null;
}

function timing(a: Absence, now: number): string {
  if (a.endsAt <= now) return 'Over';
  if (a.startsAt <= now) return `Now, ${formatDuration(a.endsAt - now)} left`;
  return `Starts in ${formatDuration(a.startsAt - now)}`;
}

export function beaconPage(ctx: Context, beaconId: string): View {
  let beacon: Beacon | null = null;
  let absences: Absence[] = [];
  let disposed = false;
  const busy = new Set<string>();
  const rowErrors = new Map<string, string>();

  const heading = pageHeading(`Beacon ${beaconId}`);
  const summary = h('div', { class: 'panel' });
  const list = h('ul', {
    class: 'absences',
    'data-testid': 'absence-list',
    'aria-label': 'Authorised absences',
  });
  const listHolder = h('div', null, loading('the absences'));

  const start = h('input', {
    id: 'absence-start',
    name: 'startsAt',
    type: 'datetime-local',
    required: true,
    'data-testid': 'absence-start',
  });
  const end = h('input', {
    id: 'absence-end',
    name: 'endsAt',
    type: 'datetime-local',
    required: true,
    'data-testid': 'absence-end',
  });
  const reason = h('input', {
    id: 'absence-reason',
    name: 'reason',
    type: 'text',
    maxlength: 200,
    autocomplete: 'off',
    placeholder: 'e.g. test appointment',
    'data-testid': 'absence-reason',
  });
  const formError = h('div', { class: 'form-error', role: 'alert' });
  const formStatus = h('div', { class: 'form-status', role: 'status' });
  const submit = h(
    'button',
    { type: 'submit', class: 'btn btn-primary', 'data-testid': 'absence-submit' },
    'Schedule absence',
  );
  const field = (id: string, label: Node | string, input: HTMLElement) =>
    h('div', { class: 'field' }, h('label', { for: id }, label), input);
  const form = h(
    'form',
    { class: 'absence-form', novalidate: true, 'data-testid': 'absence-form' },
    h(
      'fieldset',
      null,
      h('legend', null, 'Schedule an authorised absence'),
      h(
        'p',
        { class: 'hint' },
        'No alert is raised during it. At most 24 hours; it cannot start in the past. ',
        'Write no health details in the note: it is for officers only.',
      ),
      h(
        'div',
        { class: 'form-grid form-grid-2' },
        field('absence-start', 'Starts', start),
        field('absence-end', 'Ends', end),
      ),
      field(
        'absence-reason',
        h('span', null, 'Note ', h('span', { class: 'muted' }, '(optional)')),
        reason,
      ),
      formError,
      formStatus,
      submit,
    ),
  );
  const formHolder = h('div', null);

  const resetTimes = () => {
    const now = Math.floor(Date.now() / MINUTE) * MINUTE;
    start.value = toLocalInput(now);
    end.value = toLocalInput(now + 2 * 60 * MINUTE);
  };
  resetTimes();

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    formError.textContent = '';
    formStatus.textContent = '';
    const now = Date.now();
    let startsAt = fromLocalInput(start.value);
    const endsAt = fromLocalInput(end.value);
    if (startsAt === null || endsAt === null) {
      formError.textContent = 'Enter a start and an end.';
      (startsAt === null ? start : end).focus();
      return;
    }
    if (startsAt < now && now - startsAt < START_DRIFT_MS) startsAt = now;
    const problem = absenceProblem(startsAt, endsAt, now);
    if (problem) {
      formError.textContent = problem;
      start.focus();
      return;
    }
    const note = reason.value.trim();
    submit.disabled = true;
    ctx.api.scheduleAbsence(beaconId, { startsAt, endsAt, ...(note ? { reason: note } : {}) }).then(
      (absence) => {
        submit.disabled = false;
        upsert(absence);
        form.reset();
        resetTimes();
        formStatus.textContent = `Absence scheduled from ${formatAbsolute(absence.startsAt)} to ${formatAbsolute(absence.endsAt)}.`;
      },
      (e: unknown) => {
        submit.disabled = false;
        formError.textContent = describeError(e);
      },
    );
  });

  const el = h(
    'section',
    { class: 'page', 'data-testid': 'beacon-detail', 'data-beacon-id': beaconId },
    h('p', { class: 'back' }, h('a', { href: '#/beacons' }, '← All beacons')),
    h('div', { class: 'page-head' }, heading),
    summary,
    h(
      'div',
      { class: 'beacons-layout' },
      h(
        'section',
        { class: 'panel', 'aria-labelledby': 'absences-title' },
        h('h2', { id: 'absences-title' }, 'Authorised absences'),
        listHolder,
      ),
      formHolder,
    ),
  );

  function renderBeacon(): void {
    if (!beacon) return;
    const b = beacon;
    const pending = b.status === 'enable_pending' || b.status === 'end_pending';
    fill(
      summary,
      h(
        'div',
        { class: 'beacon-head' },
        h('p', { class: 'beacon-address' }, b.address),
        h(
          'span',
          {
            class: `status status-${b.status}${pending ? ' status-pending' : ''}`,
            'data-status': b.status,
            'data-testid': 'beacon-status',
          },
          codeText(b.status),
        ),
      ),
      h('p', { class: 'hint' }, BEACON_STATUS_HINT[b.status] ?? ''),
      b.lastError &&
        h('p', { class: 'notice notice-warn', 'data-testid': 'beacon-error' }, b.lastError),
      h(
        'dl',
        { class: 'facts facts-compact' },
        h('dt', null, 'Case'),
        h('dd', null, b.caseRef),
        h('dt', null, 'Installed'),
        h('dd', null, timeAt(b.installedAt), ` by ${b.installedBy}`),
      ),
    );
    fill(
      formHolder,
      b.status === 'monitoring'
        ? form
        : h(
            'p',
            { class: 'notice notice-info' },
            'Absences can be scheduled while the beacon is being monitored.',
          ),
    );
  }

  function row(a: Absence): HTMLLIElement {
    const now = Date.now();
    const cancellable = a.cancelledAt === null && a.endsAt > now;
    const problem = a.delivery === 'refused' || a.delivery === 'cancel_refused';
    const error = rowErrors.get(a.id);
    return h(
      'li',
      { class: 'card absence', 'data-testid': 'absence-row', 'data-absence-id': a.id },
      h(
        'p',
        { class: 'absence-when' },
        h('strong', null, `${formatAbsolute(a.startsAt)} → ${formatAbsolute(a.endsAt)}`),
        h('span', { class: 'muted' }, ` · ${timing(a, now)}`),
      ),
      a.reason && h('p', { class: 'note' }, a.reason),
      h(
        'p',
        {
          class: `delivery delivery-${a.delivery}${problem ? ' notice notice-warn' : ''}`,
          'data-testid': 'absence-delivery',
          'data-delivery': a.delivery,
        },
        DELIVERY_TEXT[a.delivery],
        a.lastError ? ` (${a.lastError})` : '',
      ),
      h('p', { class: 'muted' }, `Scheduled by ${a.createdBy}`),
      error && h('p', { class: 'form-error', role: 'alert' }, error),
      cancellable &&
        h(
          'div',
          { class: 'button-row' },
          h(
            'button',
            {
              type: 'button',
              class: 'btn',
              'data-testid': 'absence-cancel',
              disabled: busy.has(a.id),
              onclick: () => cancel(a),
            },
            'Cancel absence',
          ),
        ),
    );
  }

  function renderList(): void {
    const shown = absences
      .filter((a) => a.delivery !== 'cancelled')
      .sort((x, y) => x.startsAt - y.startsAt);
    fill(list, shown.map(row));
    fill(
      listHolder,
      shown.length
        ? list
        : h('p', { class: 'empty', 'data-testid': 'absence-none' }, 'No absences scheduled.'),
    );
  }

  function upsert(a: Absence): void {
    const at = absences.findIndex((x) => x.id === a.id);
    if (at >= 0) absences[at] = a;
    else absences = [...absences, a];
    renderList();
  }

  function cancel(a: Absence): void {
    busy.add(a.id);
    rowErrors.delete(a.id);
    renderList();
    ctx.api.cancelAbsence(a.id).then(
      (updated) => {
        busy.delete(a.id);
        ctx.announce('Absence cancelled.');
        upsert(updated);
      },
      (e: unknown) => {
        busy.delete(a.id);
        rowErrors.set(a.id, describeError(e));
        renderList();
      },
    );
  }

  const load = () => {
    Promise.all([ctx.api.beacon(beaconId), ctx.api.absences(beaconId)]).then(
      ([b, list]) => {
        if (disposed) return;
        beacon = b;
        absences = list;
        renderBeacon();
        renderList();
      },
      (e: unknown) => {
        if (!disposed) fill(listHolder, errorBox(e, load));
      },
    );
  };
  load();

  return {
    title: 'Beacon',
    el,
    onBeacon(b) {
      if (disposed || b.beaconId !== beaconId) return;
      beacon = b;
      renderBeacon();
    },
    onAbsence(a) {
      if (disposed || a.beaconId !== beaconId) return;
      upsert(a);
    },
    refresh: load,
    dispose() {
      disposed = true;
    },
  };
}
