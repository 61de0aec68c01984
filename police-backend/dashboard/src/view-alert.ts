/**
 * One alert: its facts, the timeline of its beacon's alerts, the review trail, and the review
 * actions (acknowledge → dispatch → resolve with an outcome and a note). Live messages patch it.
 */
import { ApiError, describeError } from './api.js';
import { fill, h, orDash } from './dom.js';
import { faultReasons, headline, reasonText, recoveryText } from './alert-text.js';
import {
  OUTCOME_LABEL,
  QUEUE_LABEL,
  codeText,
  formatDuration,
  gapEl,
  outcomeLabel,
  timeAgo,
  timeAt,
} from './format.js';
import { alertHref, beaconHref } from './router.js';
import type { Alert, Outcome, Review } from './types.js';
import { OUTCOMES, isReviewable } from './types.js';
import type { Context, View } from './view.js';
import { errorBox, loading, pageHeading } from './view.js';
import { addressText, alertMarks, stateBadge } from './view-queue.js';

type Action = 'acknowledge' | 'dispatch' | 'resolve';

const ALLOWED: Record<string, readonly Action[]> = {
  open: ['acknowledge'],
  acknowledged: ['dispatch', 'resolve'],
  dispatched: ['resolve'],
};

const ACTION_LABEL: Record<Action, string> = {
  acknowledge: 'Acknowledge',
  dispatch: 'Dispatch a patrol',
  resolve: 'Resolve',
};

const DONE: Record<Action, string> = {
  acknowledge: 'Alert acknowledged.',
  dispatch: 'Alert dispatched.',
  resolve: 'Alert resolved.',
};

const STEPS = ['open', 'acknowledged', 'dispatched', 'resolved'] as const;

const byTime = (a: Alert, b: Alert): number =>
  a.occurredAt - b.occurredAt || a.receivedAt - b.receivedAt;

function fact(term: string, ...value: (Node | string)[]): HTMLElement[] {
  return [h('dt', null, term), h('dd', null, ...value)];
}

const detailNumber = (a: Alert, key: string): number | null =>
  typeof a.detail[key] === 'number' ? (a.detail[key] as number) : null;

/** What only this kind of alert has to say. */
function kindFacts(a: Alert): HTMLElement[] {
  const at = (key: string) => timeAt(detailNumber(a, key));
  switch (a.kind) {
    case 'NO_PRESENCE': {
      const grace = detailNumber(a, 'graceSeconds');
      return [
        ...fact('Last proof of presence', timeAgo(a.lastPresenceAt)),
        ...fact('Gap started', timeAt(a.gapStartedAt)),
        ...fact('Gap length', gapEl(a)),
        ...fact('Provisional (person warned)', at('provisionalAt')),
        ...fact('Confirmed', at('confirmedAt')),
        ...(grace === null ? [] : fact('Grace period', formatDuration(grace * 1000))),
        ...(a.detail['afterAbsence'] === true
          ? fact('Authorised absence', 'The gap began when an authorised absence ended')
          : []),
      ];
    }
    case 'BEACON_FAULT': {
      const reasons = faultReasons(a);
      const counter = detailNumber(a, 'counter');
      return [
        ...fact(
          'Reasons',
          h(
            'ul',
            { class: 'reasons', 'data-testid': 'fault-reasons' },
            reasons.map((r) =>
              h(
                'li',
                { class: r === 'battery_depleted' ? 'reason-urgent' : undefined },
                reasonText(r, a.detail),
              ),
            ),
          ),
        ),
        ...(counter === null ? [] : fact('Token counter', String(counter))),
        ...(a.gapStartedAt === null ? [] : fact('Gap started', timeAt(a.gapStartedAt))),
      ];
    }
    case 'RELAY_SILENT':
      return [...fact('Silent from', at('silentFrom')), ...fact('Back at home', at('silentUntil'))];
    case 'SUSPECTED_SPOOFING':
      return [
        ...fact('Invalid tokens', String(detailNumber(a, 'invalidTokens') ?? '—')),
        ...fact('Since', at('since')),
      ];
    default:
      return a.gapStartedAt === null ? [] : fact('Gap started', timeAt(a.gapStartedAt));
  }
}

export function alertPage(ctx: Context, id: string): View {
  let alert: Alert | null = null;
  let timeline: Alert[] = [];
  let reviews: Review[] = [];
  let actionsKey = '';
  let disposed = false;
  let reloading = false;
  let reloadAgain = false;

  const heading = pageHeading('Alert');
  const subtitle = h('p', { class: 'subtitle' });
  const stateHolder = h('p', { class: 'state-line', tabindex: -1 });
  const facts = h('dl', { class: 'facts' });
  const actions = h('div', { class: 'actions' });
  const actionStatus = h('div', { class: 'form-error', role: 'alert' });
  const timelineList = h('ol', { class: 'timeline', 'data-testid': 'timeline' });
  const trail = h('div', { class: 'trail-holder' });
  const body = h('div', null, loading('the alert'));

  const el = h(
    'section',
    { class: 'page', 'data-testid': 'alert-detail', 'data-alert-id': id },
    h('p', { class: 'back' }, h('a', { href: '#/queue' }, '← Back to the queue')),
    h('div', { class: 'page-head' }, heading, stateHolder),
    body,
  );

  const content = h(
    'div',
    null,
    subtitle,
    h(
      'div',
      { class: 'detail-grid' },
      h(
        'div',
        { class: 'detail-main' },
        h(
          'section',
          { class: 'panel', 'aria-labelledby': 'review-title' },
          h('h2', { id: 'review-title' }, 'Review'),
          actions,
          actionStatus,
        ),
        h(
          'section',
          { class: 'panel', 'aria-labelledby': 'facts-title' },
          h('h2', { id: 'facts-title' }, 'Details'),
          facts,
        ),
      ),
      h(
        'div',
        { class: 'detail-side' },
        h(
          'section',
          { class: 'panel', 'aria-labelledby': 'timeline-title' },
          h('h2', { id: 'timeline-title' }, 'Timeline of this beacon'),
          timelineList,
        ),
        h(
          'section',
          { class: 'panel', 'aria-labelledby': 'trail-title' },
          h('h2', { id: 'trail-title' }, 'Review trail'),
          trail,
        ),
      ),
    ),
  );

  function renderFacts(a: Alert): void {
    fill(heading, addressText(a));
    fill(
      subtitle,
      h('span', { class: `kind kind-${a.kind}`, 'data-testid': 'alert-headline' }, headline(a)),
      ' ',
      alertMarks(a),
      ` · Case ${orDash(a.caseRef)} · Beacon `,
      h('a', { href: beaconHref(a.beaconId) }, a.beaconId),
    );
    fill(stateHolder, 'State: ', stateBadge(a.state, 'alert-state'));
    const related = a.relatedAlertId;
    const recovery = recoveryText(a);
    fill(
      facts,
      fact('What happened', headline(a)),
      a.queue !== null && fact('Queue', QUEUE_LABEL[a.queue]),
      fact('State', h('span', { class: 'cap' }, codeText(a.state))),
      a.state === 'resolved' && fact('Outcome', outcomeLabel(a.outcome)),
      a.note !== null && a.note !== '' && fact('Note', h('span', { class: 'note' }, a.note)),
      kindFacts(a),
      recovery !== null &&
        fact('Presence', h('span', { class: 'recovery', 'data-testid': 'recovery' }, recovery)),
      a.evidenceUntil !== null && fact('Late evidence covers until', timeAt(a.evidenceUntil)),
      a.occurrences > 1 && fact('Occurrences', `Happened ${a.occurrences} times`),
      a.conditionClearedAt !== null &&
        fact(
          'Condition cleared',
          timeAt(a.conditionClearedAt),
          ' — resolve the alert once the visit is done',
        ),
      fact('Occurred', timeAt(a.occurredAt)),
      fact('Received', timeAt(a.receivedAt)),
      related !== null &&
        fact('Relates to', h('a', { href: alertHref(related) }, 'the alert it updates')),
      fact('Beacon', h('a', { href: beaconHref(a.beaconId) }, `${a.beaconId} (absences)`)),
      fact('Alert ID', h('code', null, a.id)),
    );
  }

  function renderTimeline(a: Alert): void {
    if (!timeline.length) {
      fill(timelineList, h('li', { class: 'muted' }, 'No other alerts for this beacon.'));
      return;
    }
    fill(
      timelineList,
      timeline.map((t) => {
        const current = t.id === a.id;
        const label = h(
          'span',
          { class: 'tl-label' },
          h('span', { class: `kind kind-${t.kind}` }, headline(t)),
          ' ',
          stateBadge(t.state),
          current && h('span', { class: 'muted' }, ' (this alert)'),
        );
        return h(
          'li',
          { class: `tl-item${t.state === 'info' ? ' tl-info' : ''}`, 'data-alert-id': t.id },
          current
            ? h('span', { class: 'tl-current', 'aria-current': 'page' }, label)
            : h('a', { href: alertHref(t.id) }, label),
          h('span', { class: 'tl-time' }, timeAt(t.occurredAt)),
          t.state === 'resolved' &&
            h('span', { class: 'tl-extra' }, `Outcome: ${outcomeLabel(t.outcome)}`),
          t.queue === 'violation' && h('span', { class: 'tl-extra' }, 'Gap: ', gapEl(t)),
          t.occurrences > 1 && h('span', { class: 'tl-extra' }, `Happened ${t.occurrences} times`),
        );
      }),
    );
  }

  function renderTrail(): void {
    if (!reviews.length) {
      fill(trail, h('p', { class: 'muted' }, 'No review yet.'));
      return;
    }
    fill(
      trail,
      h(
        'ol',
        { class: 'trail', 'data-testid': 'review-trail' },
        reviews.map((r) =>
          h(
            'li',
            null,
            h('span', { class: 'trail-head' }, timeAt(r.at), ' · ', h('strong', null, r.officer)),
            h(
              'span',
              null,
              `${codeText(r.action)}: ${codeText(r.fromState)} → ${codeText(r.toState)}`,
              r.outcome ? ` · ${outcomeLabel(r.outcome)}` : '',
            ),
            r.note && h('span', { class: 'note' }, r.note),
          ),
        ),
      ),
    );
  }

  function renderActions(a: Alert): void {
    const allowed = ALLOWED[a.state] ?? [];
    const key = `${a.state}:${allowed.join(',')}`;
    if (key === actionsKey) return;
    actionsKey = key;
    const focused = actions.contains(document.activeElement)
      ? ((document.activeElement as HTMLElement).dataset['testid'] ?? '')
      : null;
    const oldOutcome = actions.querySelector('select')?.value ?? '';
    const oldNote = actions.querySelector('textarea')?.value ?? '';

    const steps = h(
      'ol',
      { class: 'steps', 'aria-label': 'Review steps' },
      STEPS.map((step) =>
        h('li', { 'aria-current': step === a.state ? 'step' : undefined }, codeText(step)),
      ),
    );

    const buttons = allowed
      .filter((action) => action !== 'resolve')
      .map((action) =>
        h(
          'button',
          {
            type: 'button',
            class: 'btn btn-primary',
            'data-testid': `action-${action}`,
            onclick: () => void act(action),
          },
          ACTION_LABEL[action],
        ),
      );

    let resolveForm: HTMLFormElement | null = null;
    if (allowed.includes('resolve')) {
      const outcome = h(
        'select',
        {
          id: 'resolve-outcome',
          name: 'outcome',
          required: true,
          'data-testid': 'resolve-outcome',
        },
        h('option', { value: '' }, 'Choose an outcome…'),
        OUTCOMES.map((o) => h('option', { value: o }, OUTCOME_LABEL[o])),
      );
      outcome.value = oldOutcome;
      const note = h('textarea', {
        id: 'resolve-note',
        name: 'note',
        rows: 3,
        maxlength: 2000,
        'data-testid': 'resolve-note',
      });
      note.value = oldNote;
      resolveForm = h(
        'form',
        { class: 'resolve-form', novalidate: true },
        h(
          'fieldset',
          null,
          h('legend', null, 'Resolve'),
          h('div', { class: 'field' }, h('label', { for: 'resolve-outcome' }, 'Outcome'), outcome),
          h(
            'div',
            { class: 'field' },
            h(
              'label',
              { for: 'resolve-note' },
              'Note ',
              h('span', { class: 'muted' }, '(optional)'),
            ),
            note,
          ),
          h(
            'button',
            { type: 'submit', class: 'btn btn-primary', 'data-testid': 'action-resolve' },
            'Resolve',
          ),
        ),
      );
      resolveForm.addEventListener('submit', (event) => {
        event.preventDefault();
        if (!outcome.value) {
          actionStatus.textContent = 'Choose an outcome before resolving the alert.';
          outcome.focus();
          return;
        }
        void act('resolve', { outcome: outcome.value as Outcome, note: note.value.trim() });
      });
    }

    let hint: string;
    if (a.state === 'open')
      hint = 'Acknowledge to take this alert; then dispatch a patrol or resolve it.';
    else if (a.state === 'acknowledged')
      hint = 'Dispatch a patrol, or resolve the alert without one.';
    else if (a.state === 'dispatched') hint = 'Resolve the alert once the patrol has reported.';
    else if (a.state === 'resolved') hint = `Resolved: ${outcomeLabel(a.outcome)}.`;
    else hint = 'This is an update to another alert; it needs no review.';
    if (a.conditionClearedAt !== null && a.state !== 'resolved')
      hint += ' The beacon condition has cleared; resolve the alert when nothing more is needed.';

    fill(
      actions,
      isReviewable(a.kind) && steps,
      h('p', { class: 'hint' }, hint),
      buttons.length > 0 && h('div', { class: 'button-row' }, buttons),
      resolveForm,
    );
    // Rebuilt under the officer's hands (someone else acted): keep focus on the same control.
    if (focused !== null) {
      const same = focused
        ? actions.querySelector<HTMLElement>(`[data-testid="${focused}"]`)
        : null;
      (same ?? actions.querySelector<HTMLElement>('button, select') ?? stateHolder).focus();
    }
  }

  function render(): void {
    if (!alert) return;
    renderFacts(alert);
    renderTimeline(alert);
    renderTrail();
    renderActions(alert);
    if (!content.isConnected) fill(body, content);
  }

  function setBusy(busy: boolean): void {
    for (const control of actions.querySelectorAll<
      HTMLButtonElement | HTMLSelectElement | HTMLTextAreaElement
    >('button, select, textarea')) {
      control.disabled = busy;
    }
    actions.setAttribute('aria-busy', String(busy));
  }

  async function act(
    action: Action,
    extra: { outcome?: Outcome; note?: string } = {},
  ): Promise<void> {
    if (!alert) return;
    actionStatus.textContent = '';
    setBusy(true);
    try {
      const updated = await ctx.api.act(alert.id, action, extra);
      ctx.queue.apply(updated);
      if (disposed) return;
      alert = updated;
      actionsKey = ''; // rebuild the controls (they are disabled) for the new state
      render();
      ctx.announce(DONE[action]);
      (actions.querySelector<HTMLElement>('button, select') ?? stateHolder).focus();
      // The answer has no review trail; fetch it.
      void reload().catch(() => undefined);
    } catch (e) {
      if (disposed) return;
      setBusy(false);
      actionStatus.textContent = describeError(e);
      if (e instanceof ApiError && e.code === 'ILLEGAL_TRANSITION') void reload();
    }
  }

  /** Fetch alert, timeline and reviews; concurrent calls coalesce. */
  async function reload(): Promise<void> {
    if (reloading) {
      reloadAgain = true;
      return;
    }
    reloading = true;
    try {
      do {
        reloadAgain = false;
        const data = await ctx.api.alert(id);
        if (disposed) return;
        alert = data.alert;
        timeline = [...data.timeline].sort(byTime);
        reviews = data.reviews;
        render();
      } while (reloadAgain);
    } finally {
      reloading = false;
    }
  }

  const firstLoad = () => {
    fill(body, loading('the alert'));
    reload().catch((e: unknown) => {
      if (disposed) return;
      if (e instanceof ApiError && e.status === 404) {
        fill(
          body,
          h(
            'p',
            { class: 'notice notice-info', role: 'status' },
            'There is no alert with this ID.',
          ),
        );
      } else if (alert) {
        actionStatus.textContent = describeError(e);
      } else {
        fill(body, errorBox(e, firstLoad));
      }
    });
  };
  firstLoad();

  return {
    title: 'Alert',
    el,
    onAlert(update) {
      if (!alert) return;
      let changed = false;
      if (update.beaconId === alert.beaconId || timeline.some((t) => t.id === update.id)) {
        const at = timeline.findIndex((t) => t.id === update.id);
        const known = at >= 0 ? timeline[at] : undefined;
        if (!known || update.updatedAt >= known.updatedAt) {
          if (at >= 0) timeline[at] = update;
          else timeline = [...timeline, update].sort(byTime);
          changed = true;
        }
      }
      if (update.id === alert.id && update.updatedAt >= alert.updatedAt) {
        const reviewed =
          update.state !== alert.state ||
          update.outcome !== alert.outcome ||
          update.note !== alert.note;
        alert = update;
        changed = true;
        // Someone acted on it: fetch the review trail too.
        if (reviewed) void reload().catch(() => undefined);
      }
      if (changed) render();
    },
    refresh() {
      void reload().catch(() => undefined);
    },
    dispose() {
      disposed = true;
    },
  };
}
