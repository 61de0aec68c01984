/** Beacons: their status (pending states and why they wait), registration, enable and end; each links to its own page (absences). */
import { describeError } from './api.js';
import { fill, h } from './dom.js';
import { BEACON_STATUS_HINT, codeText, timeAt } from './format.js';
import { beaconHref } from './router.js';
import type { Beacon } from './types.js';
import type { Context, View } from './view.js';
import { errorBox, loading, pageHeading } from './view.js';

const ENABLE_FROM = new Set(['registered']);
const END_FROM = new Set(['registered', 'enable_pending', 'monitoring']);

export function beaconsPage(ctx: Context): View {
  let beacons: Beacon[] = [];
  let disposed = false;
  /** The beacon whose "end monitoring" waits for confirmation. */
  let confirmingEnd: string | null = null;
  const busy = new Set<string>();
  const rowErrors = new Map<string, string>();

  const list = h('ul', { class: 'beacons', 'data-testid': 'beacon-list', 'aria-label': 'Beacons' });
  const body = h('div', null, loading('the beacons'));

  // Registration form
  const field = (id: string, label: string, attrs: Record<string, string | boolean>) => {
    const input = h('input', {
      id,
      name: id,
      type: 'text',
      required: true,
      'data-testid': id,
      ...attrs,
    });
    return { input, el: h('div', { class: 'field' }, h('label', { for: id }, label), input) };
  };
  const beaconId = field('beacon-id', 'Beacon ID', {
    autocomplete: 'off',
    autocapitalize: 'characters',
    spellcheck: 'false',
    placeholder: 'SB-0001',
  });
  const address = field('beacon-address', 'Home address', { autocomplete: 'off' });
  const caseRef = field('beacon-caseref', 'Case reference', {
    autocomplete: 'off',
    spellcheck: 'false',
  });
  const formStatus = h('div', { class: 'form-status', role: 'status' });
  const formError = h('div', { class: 'form-error', role: 'alert' });
  const submit = h(
    'button',
    { type: 'submit', class: 'btn btn-primary', 'data-testid': 'beacon-submit' },
    'Register beacon',
  );
  const form = h(
    'form',
    { class: 'beacon-form', novalidate: true, 'data-testid': 'beacon-form' },
    h(
      'fieldset',
      null,
      h('legend', null, 'Register a beacon'),
      h(
        'p',
        { class: 'hint' },
        'After installing a beacon, register it here, then enable monitoring.',
      ),
      h('div', { class: 'form-grid' }, beaconId.el, address.el, caseRef.el),
      formError,
      formStatus,
      submit,
    ),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    formError.textContent = '';
    formStatus.textContent = '';
    const input = {
      beaconId: beaconId.input.value.trim(),
      address: address.input.value.trim(),
      caseRef: caseRef.input.value.trim(),
    };
    const missing = [beaconId, address, caseRef].find((f) => !f.input.value.trim());
    if (missing) {
      formError.textContent = 'Fill in the beacon ID, the address and the case reference.';
      missing.input.focus();
      return;
    }
    submit.disabled = true;
    ctx.api.registerBeacon(input).then(
      (beacon) => {
        submit.disabled = false;
        upsert(beacon);
        form.reset();
        formStatus.textContent = `Beacon ${beacon.beaconId} registered. Enable monitoring when ready.`;
        beaconId.input.focus();
      },
      (e: unknown) => {
        submit.disabled = false;
        formError.textContent = describeError(e);
      },
    );
  });

  const el = h(
    'section',
    { class: 'page' },
    h('div', { class: 'page-head' }, pageHeading('Beacons')),
    h('div', { class: 'beacons-layout' }, h('div', null, body), form),
  );

  function command(b: Beacon, which: 'enable' | 'end'): void {
    busy.add(b.beaconId);
    rowErrors.delete(b.beaconId);
    confirmingEnd = null;
    render(b.beaconId);
    ctx.api.beaconCommand(b.beaconId, which).then(
      (updated) => {
        busy.delete(b.beaconId);
        ctx.announce(
          which === 'enable'
            ? `Beacon ${b.beaconId}: enabling, waiting for the app backend.`
            : `Beacon ${b.beaconId}: ending, waiting for the app backend.`,
        );
        upsert(updated, true);
      },
      (e: unknown) => {
        busy.delete(b.beaconId);
        rowErrors.set(b.beaconId, describeError(e));
        render(b.beaconId);
      },
    );
  }

  function row(b: Beacon): HTMLLIElement {
    const pending = b.status === 'enable_pending' || b.status === 'end_pending';
    const isBusy = busy.has(b.beaconId);
    const controls: HTMLElement[] = [];
    if (confirmingEnd === b.beaconId) {
      controls.push(
        h('span', { class: 'confirm-text' }, `End monitoring of ${b.beaconId}?`),
        h(
          'button',
          {
            type: 'button',
            class: 'btn btn-danger',
            'data-testid': 'beacon-end-confirm',
            onclick: () => command(b, 'end'),
          },
          'Yes, end monitoring',
        ),
        h(
          'button',
          {
            type: 'button',
            class: 'btn',
            onclick: () => {
              confirmingEnd = null;
              render(b.beaconId, 'beacon-end');
            },
          },
          'Cancel',
        ),
      );
    } else {
      if (ENABLE_FROM.has(b.status)) {
        controls.push(
          h(
            'button',
            {
              type: 'button',
              class: 'btn btn-primary',
              'data-testid': 'beacon-enable',
              disabled: isBusy,
              onclick: () => command(b, 'enable'),
            },
            'Enable monitoring',
          ),
        );
      }
      if (END_FROM.has(b.status)) {
        controls.push(
          h(
            'button',
            {
              type: 'button',
              class: 'btn',
              'data-testid': 'beacon-end',
              disabled: isBusy,
              onclick: () => {
                confirmingEnd = b.beaconId;
                render(b.beaconId, 'beacon-end-confirm');
              },
            },
            'End monitoring',
          ),
        );
      }
    }
    const error = rowErrors.get(b.beaconId);
    return h(
      'li',
      { class: 'card beacon', 'data-testid': 'beacon-row', 'data-beacon-id': b.beaconId },
      h(
        'div',
        { class: 'beacon-head' },
        h(
          'h2',
          { class: 'beacon-id' },
          h('a', { href: beaconHref(b.beaconId), 'data-testid': 'beacon-open' }, b.beaconId),
        ),
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
      h('p', { class: 'beacon-address' }, b.address),
      h('p', { class: 'hint' }, BEACON_STATUS_HINT[b.status] ?? ''),
      b.lastError &&
        h(
          'p',
          { class: 'notice notice-warn', 'data-testid': 'beacon-error' },
          pending && h('strong', null, 'Not confirmed yet: '),
          b.lastError,
        ),
      h(
        'dl',
        { class: 'facts facts-compact' },
        h('dt', null, 'Case'),
        h('dd', null, b.caseRef),
        h('dt', null, 'Installed'),
        h('dd', null, timeAt(b.installedAt), ` by ${b.installedBy}`),
        b.endedAt !== null && [h('dt', null, 'Ended'), h('dd', null, timeAt(b.endedAt))],
      ),
      b.status === 'monitoring' &&
        h(
          'p',
          null,
          h('a', { href: beaconHref(b.beaconId) }, 'Authorised absences (schedule or cancel)'),
        ),
      error && h('p', { class: 'form-error', role: 'alert' }, error),
      isBusy && h('p', { class: 'muted', role: 'status' }, 'Sending…'),
      controls.length > 0 && h('div', { class: 'button-row' }, controls),
    );
  }

  function findRow(id: string): HTMLLIElement | undefined {
    return [...list.children].find(
      (li): li is HTMLLIElement => (li as HTMLElement).dataset['beaconId'] === id,
    );
  }

  /** Redraw one beacon (or all), keeping keyboard focus on the equivalent control. */
  function render(id?: string, focusTestId?: string): void {
    if (id === undefined) {
      fill(
        body,
        beacons.length
          ? list
          : h('p', { class: 'empty' }, 'No beacons registered yet. Use the form to add one.'),
      );
      fill(list, beacons.map(row));
      return;
    }
    const b = beacons.find((x) => x.beaconId === id);
    const old = findRow(id);
    if (!b || !old) return render();
    const focused = old.contains(document.activeElement)
      ? ((document.activeElement as HTMLElement).dataset['testid'] ?? '')
      : null;
    const fresh = row(b);
    old.replaceWith(fresh);
    const want = focusTestId ?? focused;
    if (want !== null && want !== undefined) {
      const target =
        (want
          ? fresh.querySelector<HTMLElement>(`[data-testid="${want}"]:not([disabled])`)
          : null) ??
        fresh.querySelector<HTMLElement>('button:not([disabled])') ??
        fresh.querySelector<HTMLElement>('.beacon-id');
      if (target) {
        if (target.tagName === 'H2') target.setAttribute('tabindex', '-1');
        target.focus();
      }
    }
  }

  function upsert(b: Beacon, highlight = false): void {
    const at = beacons.findIndex((x) => x.beaconId === b.beaconId);
    if (at >= 0) {
      beacons[at] = b;
      render(b.beaconId);
    } else {
      beacons = [b, ...beacons];
      render();
    }
    if (highlight || at < 0) findRow(b.beaconId)?.classList.add('is-updated');
  }

  const load = () => {
    ctx.api.beacons().then(
      (list) => {
        if (disposed) return;
        beacons = list;
        render();
      },
      (e: unknown) => {
        if (!disposed) fill(body, errorBox(e, load));
      },
    );
  };
  load();

  return {
    title: 'Beacons',
    el,
    onBeacon(b) {
      if (disposed) return;
      upsert(b, true);
    },
    refresh: load,
    dispose() {
      disposed = true;
    },
  };
}
