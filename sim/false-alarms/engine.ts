import type { PresenceStatus } from '../../protocol/presence-status.js';
import type { TokenFields } from '../../protocol/token/fields.js';
import type { Rules } from '../../app-backend/src/config.js';
import {
  type Effect,
  type Gap,
  type QuarantineState,
  decide,
  isOpen,
} from '../../app-backend/src/decide.js';
import { withReason } from '../../app-backend/src/faults.js';
import { type Absence, relayStatus, watchAction } from '../../app-backend/src/lifecycle.js';
import type { MessageKind } from '../../app-backend/src/store.js';

/** What reaches the police backend, as the simulation records it. */
export interface PoliceMessage {
  readonly kind: MessageKind;
  readonly at: number;
  readonly alertId: string;
  readonly relatedAlertId: string | null;
  readonly gapStartedAt: number | null;
  readonly detail: Record<string, number | string | boolean | null>;
}

/**
 * One quarantine's app-backend state in memory, moved by the service's own pure rules
 * (`decide`, `watchAction`, `relayStatus`); what store.ts and watchdog.ts write as rows is kept
 * here as fields and a message list. sim/test checks it against the real service, trace for trace.
 */
export class SimQuarantine {
  state: QuarantineState;
  readonly absences: Absence[] = [];
  readonly messages: PoliceMessage[] = [];
  #provisionalAt = 0;
  #ids = 0;

  constructor(
    readonly rules: Rules,
    start: number,
    firstToken: TokenFields,
  ) {
    this.state = {
      id: 'q',
      beaconId: 'SB-sim',
      state: 'monitoring',
      windowSeconds: rules.windowSeconds,
      registeredAt: start,
      enabledAt: start,
      lastPresenceAt: null,
      lastReceivedAt: null,
      lastCounter: null,
      offsetSeconds: 0,
      offsetUpdatedAt: start,
      battery: null,
      flags: null,
      deadline: start + rules.windowSeconds * 1000,
      gap: null,
      fault: null,
      spoof: null,
      invalidStreak: 0,
      invalidSince: null,
      clockNotSetAt: null,
      lastRequestAt: null,
      relayBackAt: null,
    };
    this.upload(start, [firstToken], 0);
  }

  #id(): string {
    return `a${++this.#ids}`;
  }

  #send(
    kind: MessageKind,
    at: number,
    detail: PoliceMessage['detail'],
    related: string | null = null,
    gapStartedAt: number | null = null,
    alertId = this.#id(),
  ): string {
    this.messages.push({ kind, at, alertId, relatedAlertId: related, gapStartedAt, detail });
    return alertId;
  }

  /** What the relay is told when it sends a request now (before this request is validated). */
  status(now: number): PresenceStatus {
    const g = this.state.gap;
    return relayStatus(
      {
        state: 'monitoring',
        windowSeconds: this.state.windowSeconds,
        lastPresenceAt: this.state.lastPresenceAt,
        gap: isOpen(g)
          ? { status: g.status as 'provisional' | 'confirmed', gapStartedAt: g.gapStartedAt }
          : null,
        deadline: this.state.deadline,
        absences: this.absences,
      },
      now,
    );
  }

  /** One presence request: its authentic tokens, how many failed authentication, when it came. */
  upload(now: number, tokens: readonly TokenFields[], invalid: number): void {
    const d = decide(
      this.state,
      tokens.map((fields) => ({ fields, receivedAt: now })),
      this.rules,
      now,
      { invalidTokens: invalid, requestAt: now },
    );
    this.state = d.next;
    for (const e of d.effects) this.#apply(e, now);
  }

  #apply(e: Effect, now: number): void {
    const sent = (g: Gap) =>
      g.queue === 'violation' && (g.status === 'confirmed' || g.status === 'resolved_by_evidence');
    switch (e.type) {
      case 'gap_closed':
        if (sent(e.gap) || e.gap.silentReported)
          this.#send(
            'RESOLVED_BY_EVIDENCE',
            now,
            { lastPresenceAt: e.lastPresenceAt, coveredByEvidence: e.coveredByEvidence },
            e.gap.id,
          );
        break;
      case 'late_evidence':
        if (sent(e.gap))
          this.#send('LATE_EVIDENCE', now, { evidenceUntil: e.evidenceUntil }, e.gap.id);
        break;
      case 'relay_silent':
        this.#send(
          'RELAY_SILENT',
          now,
          { silentFrom: e.silentFrom, silentUntil: e.silentUntil },
          null,
          e.gap.gapStartedAt,
        );
        break;
      case 'fault': {
        const detail = { ...e.detail, reasons: e.reasons.join(',') };
        const open = this.state.fault?.id;
        const id = open
          ? (this.#send('ALERT_UPDATED', now, detail, open), open)
          : this.#send('BEACON_FAULT', now, detail);
        this.state = { ...this.state, fault: { id, reasons: e.reasons } };
        break;
      }
      case 'fault_cleared':
      case 'spoofing_cleared':
        this.#send('FAULT_CLEARED', now, {}, e.alertId);
        break;
      case 'spoofing': {
        const detail = { invalidTokens: e.invalidTokens, since: e.since };
        const open = this.state.spoof?.id;
        const id = open
          ? (this.#send('ALERT_UPDATED', now, detail, open), open)
          : this.#send('SUSPECTED_SPOOFING', now, detail);
        this.state = { ...this.state, spoof: { id, reported: e.invalidTokens } };
        break;
      }
    }
  }

  /** One watchdog look at `now`, as watchdog.ts takes it. */
  tick(now: number): void {
    const s = this.state;
    if (s.deadline === null || s.deadline > now) return;
    const open = isOpen(s.gap) ? s.gap : null;
    const action = watchAction(
      {
        deadline: s.deadline,
        lastPresenceAt: s.lastPresenceAt,
        enabledAt: s.enabledAt,
        gap: open
          ? {
              status: open.status,
              gapStartedAt: open.gapStartedAt,
              heldAt: open.heldAt,
              provisionalAt: this.#provisionalAt,
            }
          : null,
        battery: s.battery,
        clockNotSetAt: s.clockNotSetAt,
        lastRequestAt: s.lastRequestAt,
        relayBackAt: s.relayBackAt,
        absences: this.absences.filter((a) => a.endsAt > now),
      },
      this.rules,
      now,
    );
    switch (action.type) {
      case 'none':
        if (open?.status === 'confirmed') this.state = { ...s, deadline: null };
        return;
      case 'defer':
        this.state = {
          ...s,
          deadline: action.until,
          gap: action.clearGap && open ? { ...open, status: 'cleared', closedAt: now } : s.gap,
        };
        return;
      case 'hold':
        if (open)
          this.state = {
            ...s,
            deadline: action.recheckAt,
            gap: { ...open, heldAt: open.heldAt ?? now },
          };
        return;
      case 'provisional':
        this.#provisionalAt = s.deadline;
        this.state = {
          ...s,
          deadline: action.confirmAt,
          gap: {
            id: this.#id(),
            status: 'provisional',
            queue: null,
            gapStartedAt: action.gapStartedAt,
            evidenceUntil: null,
            closedAt: null,
            heldAt: null,
            silentReported: false,
          },
        };
        return;
      case 'confirm': {
        if (!open) return;
        this.state = {
          ...s,
          deadline: null,
          gap: { ...open, status: 'confirmed', queue: action.queue },
        };
        if (action.queue === 'violation') {
          this.#send(
            'NO_PRESENCE',
            now,
            {
              lastPresenceAt: s.lastPresenceAt,
              provisionalAt: this.#provisionalAt,
              confirmedAt: now,
              graceSeconds: this.rules.graceSeconds,
              afterAbsence: this.#provisionalAt > open.gapStartedAt + s.windowSeconds * 1000,
              relaySilent: action.relaySilent,
            },
            null,
            open.gapStartedAt,
            open.id,
          );
        } else if (action.relaySilent) {
          this.state = {
            ...this.state,
            gap: { ...open, status: 'confirmed', queue: 'maintenance', silentReported: true },
          };
          this.#send(
            'RELAY_SILENT',
            now,
            { silentFrom: open.gapStartedAt, silentUntil: null },
            null,
            open.gapStartedAt,
            open.id,
          );
        } else if (action.reason && !(s.fault?.reasons ?? []).includes(action.reason)) {
          const reasons = withReason(s.fault?.reasons ?? [], action.reason);
          this.#apply(
            {
              type: 'fault',
              reasons,
              detail: { batteryPercent: s.battery, silentSince: open.gapStartedAt },
            },
            now,
          );
        }
        return;
      }
    }
  }
}
