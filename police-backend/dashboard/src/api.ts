/**
 * The police backend's officer API (docs/police-api.md). Same origin, the session cookie does the
 * authentication; the CSRF value lives only in this object's memory, never in storage.
 */
import type {
  Absence,
  Alert,
  AuditEntry,
  AuditVerify,
  Beacon,
  DailyStat,
  Outcome,
  Queue,
  QueueSnapshot,
  Review,
  Session,
} from './types.js';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
  ) {
    super(`${status} ${code}`);
    this.name = 'ApiError';
  }
}

/** status 0: the request never got an answer (offline, server down, timeout). */
export const isUnreachable = (e: unknown): boolean => e instanceof ApiError && e.status === 0;

const MESSAGES: Record<string, string> = {
  BAD_CREDENTIALS: 'Wrong username or password.',
  LOCKED_OUT: 'Too many failed attempts: this account is locked for 15 minutes.',
  ILLEGAL_TRANSITION:
    'This alert was changed in the meantime (perhaps by another officer); it has been reloaded.',
  OUTCOME_REQUIRED: 'Choose an outcome before resolving the alert.',
  BEACON_EXISTS: 'A beacon with this ID is already registered.',
  FORBIDDEN_ROLE: 'Your role does not allow this.',
  CSRF: 'Your session’s security token is out of date. Reload the page and try again.',
  NOT_SIGNED_IN: 'You are not signed in.',
  BAD_REQUEST: 'The server refused the request as malformed. Check the fields and try again.',
  BAD_ABSENCE:
    'The absence was refused: it must end after it starts, last at most 24 hours, not be over, and not start in the past.',
  NOT_MONITORING: 'Absences can only be scheduled while the beacon is being monitored.',
  NO_SUCH_BEACON: 'There is no beacon with this ID.',
  NO_SUCH_ABSENCE: 'This absence no longer exists.',
  ABSENCE_CANCELLED: 'This absence has already been cancelled.',
  ABSENCE_OVER: 'This absence is already over; there is nothing to cancel.',
};

/** A sentence for an officer; the server's code is included when it is not one we know. */
export function describeError(e: unknown): string {
  if (e instanceof ApiError) {
    if (e.status === 0) return 'Cannot reach the police backend. Check the connection and retry.';
    return MESSAGES[e.code] ?? `The request failed (${e.status} ${e.code}).`;
  }
  return 'Something went wrong in the dashboard. Reload the page.';
}

interface RequestOptions {
  readonly body?: unknown;
  /** Do not treat a 401 as "session over" (sign-in and the first session check). */
  readonly expect401?: boolean;
}

const TIMEOUT_MS = 20_000;

export class Api {
  private csrf: string | null = null;
  /** Called on any 401 outside sign-in: the session is over. */
  onUnauthorized: () => void = () => undefined;

  setCsrf(value: string | null): void {
    this.csrf = value;
  }

  private async request<T>(
    method: 'GET' | 'POST' | 'DELETE',
    path: string,
    options: RequestOptions = {},
    retried = false,
  ): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    const signIn = method === 'POST' && path === '/api/session';
    if (method !== 'GET' && !signIn) headers['x-csrf-token'] = this.csrf ?? '';
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), TIMEOUT_MS);
    let response: Response;
    try {
      response = await fetch(path, {
        method,
        headers,
        credentials: 'same-origin',
        cache: 'no-store',
        signal: controller.signal,
        ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
      });
    } catch {
      throw new ApiError(0, 'UNREACHABLE');
    } finally {
      clearTimeout(timer);
    }
    if (response.status === 204) return undefined as T;
    let data: unknown = null;
    try {
      data = await response.json();
    } catch {
      if (response.ok) throw new ApiError(response.status, 'BAD_RESPONSE');
    }
    if (response.ok) return data as T;
    const code =
      data && typeof data === 'object' && typeof (data as { error?: unknown }).error === 'string'
        ? (data as { error: string }).error
        : `HTTP_${response.status}`;
    if (response.status === 401 && !options.expect401) this.onUnauthorized();
    // The CSRF value is bound to the session; another tab may have signed in again.
    if (response.status === 403 && code === 'CSRF' && !retried && method !== 'GET') {
      const session = await this.getSession();
      this.csrf = session.csrf;
      return this.request<T>(method, path, options, true);
    }
    throw new ApiError(response.status, code);
  }

  async signIn(username: string, password: string): Promise<Session> {
    const session = await this.request<Session>('POST', '/api/session', {
      body: { username, password },
      expect401: true,
    });
    this.csrf = session.csrf;
    return session;
  }

  /** The current session; with `expect401` a 401 only throws (used at start-up). */
  async getSession(expect401 = false): Promise<Session> {
    const session = await this.request<Session>('GET', '/api/session', { expect401 });
    this.csrf = session.csrf;
    return session;
  }

  async signOut(): Promise<void> {
    await this.request<void>('DELETE', '/api/session', { expect401: true });
    this.csrf = null;
  }

  /** The first `limit` open alerts of each queue, with the counts of all. */
  queue(limit: number): Promise<QueueSnapshot> {
    return this.request<QueueSnapshot>('GET', `/api/alerts?view=queue&limit=${limit}`);
  }

  /** The next `limit` open alerts of one queue after the alert `after`. */
  async queueAfter(queue: Queue, after: string, limit: number): Promise<Alert[]> {
    const q = new URLSearchParams({ view: 'queue', queue, after, limit: String(limit) });
    return (await this.request<{ alerts: Alert[] }>('GET', `/api/alerts?${q}`)).alerts;
  }

  async history(filters: URLSearchParams): Promise<Alert[]> {
    const q = new URLSearchParams({ view: 'history' });
    for (const [k, v] of filters) if (v !== '') q.set(k, v);
    return (await this.request<{ alerts: Alert[] }>('GET', `/api/alerts?${q}`)).alerts;
  }

  alert(id: string): Promise<{ alert: Alert; timeline: Alert[]; reviews: Review[] }> {
    return this.request('GET', `/api/alerts/${encodeURIComponent(id)}`);
  }

  async act(
    id: string,
    action: 'acknowledge' | 'dispatch' | 'resolve',
    extra: { outcome?: Outcome; note?: string } = {},
  ): Promise<Alert> {
    const body: Record<string, string> = { action };
    if (extra.outcome) body['outcome'] = extra.outcome;
    if (extra.note) body['note'] = extra.note;
    const path = `/api/alerts/${encodeURIComponent(id)}/actions`;
    return (await this.request<{ alert: Alert }>('POST', path, { body })).alert;
  }

  async beacons(): Promise<Beacon[]> {
    return (await this.request<{ beacons: Beacon[] }>('GET', '/api/beacons')).beacons;
  }

  async registerBeacon(input: { beaconId: string; address: string; caseRef: string }) {
    return (await this.request<{ beacon: Beacon }>('POST', '/api/beacons', { body: input })).beacon;
  }

  async beaconCommand(beaconId: string, command: 'enable' | 'end'): Promise<Beacon> {
    const path = `/api/beacons/${encodeURIComponent(beaconId)}/${command}`;
    return (await this.request<{ beacon: Beacon }>('POST', path, { body: {} })).beacon;
  }

  async beacon(beaconId: string): Promise<Beacon> {
    const path = `/api/beacons/${encodeURIComponent(beaconId)}`;
    return (await this.request<{ beacon: Beacon }>('GET', path)).beacon;
  }

  async absences(beaconId: string): Promise<Absence[]> {
    const path = `/api/beacons/${encodeURIComponent(beaconId)}/absences`;
    return (await this.request<{ absences: Absence[] }>('GET', path)).absences;
  }

  async scheduleAbsence(
    beaconId: string,
    input: { startsAt: number; endsAt: number; reason?: string },
  ): Promise<Absence> {
    const path = `/api/beacons/${encodeURIComponent(beaconId)}/absences`;
    return (await this.request<{ absence: Absence }>('POST', path, { body: input })).absence;
  }

  async cancelAbsence(id: string): Promise<Absence> {
    const path = `/api/absences/${encodeURIComponent(id)}/cancel`;
    return (await this.request<{ absence: Absence }>('POST', path, { body: {} })).absence;
  }

  async dailyStats(days: number): Promise<DailyStat[]> {
    return (await this.request<{ days: DailyStat[] }>('GET', `/api/stats/daily?days=${days}`)).days;
  }

  audit(limit: number): Promise<{ entries: AuditEntry[]; verify: AuditVerify }> {
    return this.request('GET', `/api/audit?limit=${limit}`);
  }
}
