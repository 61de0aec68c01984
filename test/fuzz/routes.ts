import express from 'express';

/** What the recorder reads of an Express app: its router's layers and their routes. */
interface RoutedApp {
  readonly router: {
    readonly stack: readonly {
      readonly route?: { path: string; methods: Record<string, boolean> };
    }[];
  };
}
type RouteFn = (this: RoutedApp, path: string) => unknown;

/**
 * Run `start` while noting every Express app it builds; then list their routes as
 * "METHOD /pattern", one per registration (so /healthz on two listeners appears twice).
 * Read from the routers themselves, a route added later cannot be left out of the fuzzing.
 */
export async function recordRoutes<T>(
  start: () => Promise<T>,
): Promise<{ result: T; routes: string[] }> {
  const proto = express.application as unknown as { route: RouteFn };
  const original = proto.route;
  const apps = new Set<RoutedApp>();
  proto.route = function (this: RoutedApp, path: string) {
    apps.add(this);
    return original.call(this, path);
  };
  let result: T;
  try {
    result = await start();
  } finally {
    proto.route = original;
  }
  const routes: string[] = [];
  for (const app of apps)
    for (const layer of app.router.stack)
      if (layer.route)
        for (const [method, on] of Object.entries(layer.route.methods))
          if (on) routes.push(`${method.toUpperCase()} ${layer.route.path}`);
  return { result, routes: routes.sort() };
}

/** Routes registered but not fuzzed, and fuzzed ones that no longer exist (both must be empty). */
export function coverageGaps(
  registered: readonly string[],
  fuzzed: readonly string[],
): { notFuzzed: string[]; stale: string[] } {
  const left = [...fuzzed];
  const notFuzzed: string[] = [];
  for (const r of registered) {
    const i = left.indexOf(r);
    if (i < 0) notFuzzed.push(r);
    else left.splice(i, 1);
  }
  return { notFuzzed, stale: left };
}
