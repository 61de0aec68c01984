/** What every page gets and gives back. */
import type { Api } from './api.js';
import { describeError } from './api.js';
import { h } from './dom.js';
import type { QueueStore } from './queue-store.js';
import type { Absence, Alert, Beacon, Session } from './types.js';

export interface Context {
  readonly api: Api;
  readonly session: Session;
  readonly queue: QueueStore;
  /** Say something to screen readers (polite). */
  readonly announce: (text: string) => void;
}

export interface View {
  readonly title: string;
  readonly el: HTMLElement;
  /** A live `alert` message. */
  onAlert?(alert: Alert): void;
  /** A live `beacon` message. */
  onBeacon?(beacon: Beacon): void;
  /** A live `absence` message. */
  onAbsence?(absence: Absence): void;
  /** The live connection is back after a drop: reload what may have been missed. */
  refresh?(): void;
  /** The page is being left. */
  dispose?(): void;
}

/** The page's heading: focus target after navigation. */
export const pageHeading = (text: string): HTMLHeadingElement =>
  h('h1', { tabindex: -1, class: 'page-title' }, text);

/** An error box with a retry button. */
export function errorBox(error: unknown, retry?: () => void): HTMLElement {
  return h(
    'div',
    { class: 'notice notice-error', role: 'alert' },
    h('p', null, describeError(error)),
    retry && h('button', { type: 'button', class: 'btn', onclick: () => retry() }, 'Try again'),
  );
}

export const loading = (what: string): HTMLElement =>
  h('p', { class: 'loading', role: 'status' }, `Loading ${what}…`);
