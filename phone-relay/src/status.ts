/** What the relay reports about itself: a JSON object, and the same as text a person can read. */
import type { ReassemblerStats } from '../../protocol/frames/reassembler.js';
import type { PresenceStatus } from '../../protocol/presence-status.js';

export interface UploadRecord {
  /** When the cycle started (relay clock, ms). */
  readonly at: number;
  /** Every request of the cycle was answered 202. */
  readonly ok: boolean;
  readonly requests: number;
  /** Tokens the server took (answered 202 for). */
  readonly tokens: number;
  /** One entry per request answered 202, in the order sent: tokens and when they were heard. */
  readonly batches: readonly {
    readonly tokens: number;
    readonly oldestHeardAt: number | null;
    readonly newestHeardAt: number | null;
  }[];
  readonly error?: { readonly code: string; readonly message: string; readonly status?: number };
}

export interface RelayStatus {
  readonly mode: 'quarantined' | 'dummy';
  /** The app backend's last word to this person (sealed in its answer); null until one arrives. */
  readonly serverStatus: PresenceStatus | null;
  /** What the person must be told now, or null (relayWarning). */
  readonly warning: string | null;
  readonly running: boolean;
  readonly now: number;
  /** When the last token not seen before was heard. */
  readonly lastTokenAt: number | null;
  readonly buffer: {
    readonly tokens: number;
    readonly limit: number;
    readonly oldestHeardAt: number | null;
    readonly droppedOldest: number;
    readonly expired: number;
  };
  readonly nextUploadAt: number | null;
  readonly lastUpload: UploadRecord | null;
  readonly lastSuccessAt: number | null;
  readonly uploads: {
    readonly cycles: number;
    readonly ok: number;
    readonly failed: number;
    readonly requests: number;
    readonly tokensDelivered: number;
  };
  /** new: tokens buffered; duplicate: the same token again (replayed, or from another address). */
  readonly tokens: { readonly new: number; readonly duplicate: number };
  /** What the frame gate did with advertisements (before reassembly). */
  readonly frames: {
    readonly heard: number;
    readonly notOurs: number;
    readonly firstSighting: number;
    readonly newcomerLimited: number;
    readonly addressLimited: number;
    readonly globalLimited: number;
    readonly fed: number;
  };
  readonly reassembler: ReassemblerStats;
  readonly memory: {
    readonly addresses: number;
    readonly trusted: number;
    readonly pendingHalfTokens: number;
    readonly recentFragments: number;
    readonly seenTokenHashes: number;
    readonly buffered: number;
  };
  /** Things found at start that the person should know (e.g. a corrupt buffer moved aside). */
  readonly problems: readonly string[];
  /** The last few errors, newest last. */
  readonly errors: readonly {
    readonly at: number;
    readonly code: string;
    readonly message: string;
  }[];
}

function when(at: number | null, now: number): string {
  if (at === null) return 'never';
  const iso = new Date(at)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, 'Z');
  const s = Math.round((now - at) / 1000);
  const rel =
    Math.abs(s) < 90
      ? `${Math.abs(s)} s`
      : Math.abs(s) < 5400
        ? `${Math.round(Math.abs(s) / 60)} min`
        : `${(Math.abs(s) / 3600).toFixed(1)} h`;
  return `${iso} (${s >= 0 ? `${rel} ago` : `in ${rel}`})`;
}

const n = (x: number) => x.toLocaleString('en-US');

/** The status as a few lines of plain text. */
export function formatStatus(s: RelayStatus): string {
  const lines: string[] = [];
  const row = (label: string, value: string) => lines.push(`  ${label.padEnd(18)} ${value}`);
  lines.push(
    `SmartBeacon relay, ${s.mode === 'quarantined' ? 'relaying presence' : 'dummy mode (not quarantined)'}${s.running ? '' : ', stopped'}`,
  );
  if (s.mode === 'quarantined' && s.warning) row('WARNING', s.warning);
  if (s.mode === 'quarantined')
    row('server says', s.serverStatus ? statusLine(s.serverStatus) : 'nothing yet');
  if (s.mode === 'quarantined') row('last token heard', when(s.lastTokenAt, s.now));
  row(
    'buffered tokens',
    `${n(s.buffer.tokens)} of ${n(s.buffer.limit)}${s.buffer.oldestHeardAt === null ? '' : `, oldest heard ${when(s.buffer.oldestHeardAt, s.now)}`}`,
  );
  if (s.buffer.droppedOldest || s.buffer.expired)
    row(
      'dropped',
      `${n(s.buffer.droppedOldest)} oldest (buffer full), ${n(s.buffer.expired)} older than the buffer's age limit`,
    );
  const u = s.lastUpload;
  row(
    'last upload',
    u === null
      ? 'none yet'
      : `${when(u.at, s.now)}: ${u.ok ? 'ok' : `FAILED (${u.error?.code}: ${u.error?.message})`}, ${n(u.tokens)} tokens in ${u.requests} request${u.requests === 1 ? '' : 's'}`,
  );
  if (u && !u.ok) row('last success', when(s.lastSuccessAt, s.now));
  row('next upload', s.nextUploadAt === null ? 'not scheduled' : when(s.nextUploadAt, s.now));
  row(
    'uploads',
    `${n(s.uploads.ok)} ok, ${n(s.uploads.failed)} failed; ${n(s.uploads.tokensDelivered)} tokens delivered`,
  );
  if (s.mode === 'quarantined') {
    const f = s.frames;
    row(
      'advertisements',
      `${n(f.heard)} heard: ${n(f.notOurs)} not ours, ${n(f.fed)} to the reassembler, limited ${n(f.addressLimited)} per address / ${n(f.globalLimited)} global / ${n(f.newcomerLimited)} new addresses, ${n(f.firstSighting)} first sightings`,
    );
    const r = s.reassembler;
    row(
      'reassembler',
      `${n(r.completed)} tokens (${n(s.tokens.new)} new, ${n(s.tokens.duplicate)} repeats), ${n(r.duplicate)} repeated frames, ${n(r.checkFailed)} failed checks, ${n(r.conflict)} conflicts, ${n(r.evicted + r.dropped + r.expired)} half tokens given up`,
    );
    const m = s.memory;
    row(
      'memory',
      `${n(m.addresses)} addresses (${m.trusted} trusted), ${n(m.pendingHalfTokens)} half tokens, ${n(m.seenTokenHashes)} token hashes`,
    );
  }
  for (const p of s.problems) row('problem', p);
  for (const e of s.errors.slice(-3)) row('error', `${when(e.at, s.now)} ${e.code}: ${e.message}`);
  return lines.join('\n');
}

const clock = (ms: number | null) =>
  ms === null ? '—' : new Date(ms).toISOString().slice(11, 16) + ' UTC';

/** The sealed status in words a person can act on. */
export function statusLine(st: PresenceStatus): string {
  switch (st.code) {
    case 'all_clear':
      return `all clear (last proof of presence ${clock(st.since)})`;
    case 'not_heard':
      return `your beacon has not been heard since ${clock(st.since)} — go home or check Bluetooth; the police will be told at ${clock(st.until)}`;
    case 'warning_grace':
      return `no proof of presence since ${clock(st.since)} — go home now; the police will be told at ${clock(st.until)}`;
    case 'reported':
      return `the police have been told: no proof of presence since ${clock(st.since)}`;
    case 'absence':
      return `authorised absence until ${clock(st.until)}`;
    case 'not_monitored':
      return 'registered; monitoring has not started yet';
  }
}

/** The beacon speaks once a minute: this long without a new token means it is not being heard. */
export const LOCAL_SILENCE_MS = 150_000;

/**
 * What the person must be told now, from the relay's own ears first (no beacon for a few minutes:
 * Bluetooth off, too far, or away), then from the server. The server's status is as old as the
 * last validated upload, so a "not heard" older than tokens this relay has since heard and sent
 * is stale and not shown; "reported" always is.
 */
export function relayWarning(
  server: PresenceStatus | null,
  lastTokenAt: number | null,
  now: number,
  cadenceMs = 60_000,
): string | null {
  const silenceMs = (LOCAL_SILENCE_MS / 60_000) * cadenceMs;
  if (server?.code === 'reported') return statusLine(server);
  if (server?.code === 'not_monitored' || server?.code === 'absence') return null;
  const silentFor = lastTokenAt === null ? Infinity : now - lastTokenAt;
  if (silentFor > silenceMs)
    return `your beacon has not been heard for ${Number.isFinite(silentFor) ? `${Math.round(silentFor / 60_000)} min` : 'a while'} — check Bluetooth, move closer to it, or go home${
      server?.code === 'warning_grace' || server?.code === 'not_heard'
        ? `; the police will be told at ${clock(server.until)}`
        : ''
    }`;
  const since = server?.since ?? null;
  const stale = lastTokenAt !== null && since !== null && lastTokenAt > since + cadenceMs;
  if ((server?.code === 'not_heard' || server?.code === 'warning_grace') && !stale)
    return statusLine(server);
  return null;
}
