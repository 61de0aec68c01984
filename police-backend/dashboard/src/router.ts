/**
 * Hash routes, so the server only ever serves `/`: `#/queue` (violations),
 * `#/queue?queue=maintenance`, `#/alerts/<id>`, `#/beacons`, `#/beacons/<id>`, `#/history?…`,
 * `#/stats?…`, `#/audit`.
 */
import type { Queue } from './types.js';

export type Route =
  | { readonly name: 'queue'; readonly queue: Queue }
  | { readonly name: 'alert'; readonly id: string }
  | { readonly name: 'beacons' }
  | { readonly name: 'beacon'; readonly id: string }
  | { readonly name: 'history'; readonly params: URLSearchParams }
  | { readonly name: 'stats'; readonly params: URLSearchParams }
  | { readonly name: 'audit' }
  | { readonly name: 'notfound'; readonly path: string };

export type RouteName = Route['name'];

export function parseRoute(hash: string): Route {
  const raw = hash.replace(/^#/, '');
  const [pathPart = '', query = ''] = raw.split('?', 2);
  const parts = pathPart.split('/').filter(Boolean);
  const params = new URLSearchParams(query);
  const [first, second, ...rest] = parts;
  if (rest.length) return { name: 'notfound', path: pathPart };
  switch (first) {
    case undefined:
    case 'queue':
      return second === undefined
        ? {
            name: 'queue',
            queue: params.get('queue') === 'maintenance' ? 'maintenance' : 'violation',
          }
        : { name: 'notfound', path: pathPart };
    case 'alerts':
    case 'beacons':
      if (second === undefined)
        return first === 'beacons' ? { name: 'beacons' } : { name: 'notfound', path: pathPart };
      try {
        const id = decodeURIComponent(second);
        return first === 'alerts' ? { name: 'alert', id } : { name: 'beacon', id };
      } catch {
        return { name: 'notfound', path: pathPart };
      }
    case 'audit':
      return second === undefined ? { name: first } : { name: 'notfound', path: pathPart };
    case 'history':
    case 'stats':
      return second === undefined ? { name: first, params } : { name: 'notfound', path: pathPart };
    default:
      return { name: 'notfound', path: pathPart };
  }
}

export const alertHref = (id: string): string => `#/alerts/${encodeURIComponent(id)}`;
export const beaconHref = (id: string): string => `#/beacons/${encodeURIComponent(id)}`;
export const queueHref = (queue: Queue): string =>
  queue === 'violation' ? '#/queue' : `#/queue?queue=${queue}`;

export function withQuery(path: string, params: URLSearchParams): string {
  const clean = new URLSearchParams();
  for (const [k, v] of params) if (v !== '') clean.set(k, v);
  const q = clean.toString();
  return q ? `${path}?${q}` : path;
}
