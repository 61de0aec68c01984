/**
 * Build the officers' dashboard for the browser, offline: esbuild bundles
 * `police-backend/dashboard/src/main.ts` into `dist/assets/app.js` (ES2020 module, minified, linked
 * source map) and the page and stylesheet are copied beside it. It does not type-check: the repo's
 * build runs `tsc -p police-backend/dashboard/tsconfig.json` for that.
 *
 * Runs compiled, from `dist/police-backend/scripts/`; folders are found relative to that.
 */
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const DASHBOARD_DIR = fileURLToPath(
  new URL('../../../police-backend/dashboard/', import.meta.url),
);

/** Build into `police-backend/dashboard/dist/` and return that folder's path. */
export async function buildDashboard(): Promise<string> {
  const dist = join(DASHBOARD_DIR, 'dist');
  const assets = join(dist, 'assets');
  rmSync(dist, { recursive: true, force: true });
  mkdirSync(assets, { recursive: true });
  await build({
    entryPoints: [join(DASHBOARD_DIR, 'src', 'main.ts')],
    outfile: join(assets, 'app.js'),
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2020',
    minify: true,
    sourcemap: 'linked',
    legalComments: 'none',
    tsconfig: join(DASHBOARD_DIR, 'tsconfig.json'),
    logLevel: 'warning',
  });
  copyFileSync(join(DASHBOARD_DIR, 'index.html'), join(dist, 'index.html'));
  copyFileSync(join(DASHBOARD_DIR, 'styles.css'), join(assets, 'app.css'));
  return dist;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const dist = await buildDashboard();
  console.log(`dashboard built: ${dist}`);
}
