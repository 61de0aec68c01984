import express from 'express';

/** A route as an Express app registers it: method and path pattern. */
export interface Route {
  readonly method: string;
  readonly path: string;
}

const METHODS = ['get', 'post', 'put', 'patch', 'delete', 'all'] as const;
type Registrar = (this: object, ...args: unknown[]) => unknown;

/**
 * Run `start` (a service's start-up) and list, per Express app it created, every route
 * registered on it. Apps copy their methods from `express.application` when created, so
 * wrapping those records what the servers really serve, routes registered in loops included.
 */
export async function recordRoutes<T>(
  start: () => Promise<T>,
): Promise<{ result: T; apps: Route[][] }> {
  const proto = express.application as unknown as Record<string, Registrar>;
  const originals = METHODS.map((m) => [m, proto[m] as Registrar] as const);
  const apps = new Map<object, Route[]>();
  try {
    for (const [method, original] of originals) {
      proto[method] = function (this: object, ...args: unknown[]) {
        // `app.get('setting')` reads a setting: only a path with a handler is a route.
        if (typeof args[0] === 'string' && args.length > 1) {
          const routes = apps.get(this) ?? [];
          routes.push({ method: method.toUpperCase(), path: args[0] });
          apps.set(this, routes);
        }
        return original.apply(this, args);
      };
    }
    const result = await start();
    return { result, apps: [...apps.values()] };
  } finally {
    for (const [method, original] of originals) proto[method] = original;
  }
}

/** The routes of the one app that serves `marker` (a path only that listener has). */
export function appServing(apps: Route[][], marker: RegExp): Route[] {
  const found = apps.filter((routes) => routes.some((r) => marker.test(r.path)));
  if (found.length !== 1) throw new Error(`${found.length} apps serve ${String(marker)}`);
  return found[0] as Route[];
}

/** `METHOD path`, the key the matrices are indexed by. */
export const routeKey = (r: Route): string => `${r.method} ${r.path}`;
