import type { RelayStatus } from '../../phone-relay/src/status.js';
import type { Home } from './scenario.js';

const ago = (at: number | null, now: number): string =>
  at === null ? '—' : `${Math.max(0, Math.round((now - at) / 1000))} s ago`;

/** What the person's phone shows, in a few words. */
function phoneSays(s: RelayStatus | undefined): string {
  if (!s) return '—';
  if (s.warning) return `WARNING: ${s.warning.slice(0, 48)}${s.warning.length > 48 ? '…' : ''}`;
  const code = s.serverStatus?.code;
  // Without a warning the person sees all clear (a stale "not heard" is not shown: phone-relay).
  if (code === 'absence' || code === 'not_monitored') return code.replace('_', ' ');
  return code ? 'all clear' : 'starting';
}

/** A short table of homes: where the person is, what the relay heard and sent, what the police see. */
export function renderTable(homes: readonly Home[], now: number): string {
  const rows = homes.map((h) => {
    const s = h.relay?.status();
    return [
      String(h.index + 1),
      h.beaconId ?? h.step,
      h.address,
      h.leftAt === null ? 'home' : `left ${ago(h.leftAt, now)}`,
      ago(s?.lastTokenAt ?? null, now),
      s?.lastUpload ? `${s.lastUpload.ok ? 'ok' : 'FAILED'} ${ago(s.lastUpload.at, now)}` : '—',
      phoneSays(s),
      h.alert ? `${h.alert.kind} (${h.alert.state})` : '—',
    ];
  });
  const head = [
    '#',
    'beacon',
    'address',
    'person',
    'beacon heard',
    'last upload',
    'phone shows',
    'police',
  ];
  const widths = head.map((t, i) => Math.max(t.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ');
  return [line(head), line(widths.map((w) => '─'.repeat(w))), ...rows.map(line)].join('\n');
}
