import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** Every repository file a module reaches through relative imports, followed transitively. */
function reachable(entry: string): Set<string> {
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const source = readFileSync(file, 'utf8');
    for (const [, spec] of source.matchAll(/(?:import|export)[^'"]*?from\s+['"](\.[^'"]+)['"]/g)) {
      visit(resolve(dirname(file), (spec as string).replace(/\.js$/, '.ts')));
    }
  };
  visit(entry);
  return new Set([...seen].map((f) => relative(ROOT, f)));
}

const sources = (dir: string) =>
  readdirSync(`${ROOT}${dir}`)
    .filter((f) => f.endsWith('.ts'))
    .map((f) => `${ROOT}${dir}/${f}`);

describe('privacy split in the imports (ARCHITECTURE.md §2–3)', () => {
  it('the police backend reaches nothing that opens tokens or holds beacon keys', () => {
    const all = new Set(sources('police-backend/src').flatMap((f) => [...reachable(f)]));
    const forbidden = [...all].filter((f) =>
      /^(protocol\/token|protocol\/frames|app-backend|firmware|phone-relay)\//.test(f),
    );
    assert.deepEqual(forbidden, []);
    assert.ok(all.has('backend-kit/db.ts'), 'the walk does follow imports');
  });

  it('the app backend reaches nothing of the police backend (addresses, officers)', () => {
    const all = new Set(sources('app-backend/src').flatMap((f) => [...reachable(f)]));
    assert.deepEqual(
      [...all].filter((f) => f.startsWith('police-backend/')),
      [],
    );
    assert.ok(all.has('protocol/token/open.ts'), 'the walk does follow imports');
  });
});
