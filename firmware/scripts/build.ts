/**
 * `npm run firmware:build`: TypeScript → one Espruino file per board, offline.
 * esbuild bundles at ES2015 with the board's crypto switches (dead code dropped), TypeScript lowers
 * it to ES5, the syntax gate refuses anything Espruino lacks, and the Espruino CLI processes it
 * with the board file kept in firmware/boards (so require("crypto") counts as built in).
 */
import { build } from 'esbuild';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import ts from 'typescript';
import { BOARDS, type BoardId, FIRMWARE_DIR, bundlePath, readBoard } from './boards.js';
import { runEspruinoCli } from './espruino-cli.js';
import { espruinoSyntaxProblems } from './espruino-syntax.js';

/** The board's bundle in ES5; `minify: false` keeps it readable (the energy benchmark counts its statements). */
export async function bundleFor(
  board: BoardId,
  options: { minify?: boolean } = {},
): Promise<string> {
  const minify = options.minify ?? true;
  const { smartbeacon } = readBoard(board);
  const result = await build({
    entryPoints: [`${FIRMWARE_DIR}src/main.ts`],
    bundle: true,
    write: false,
    // CommonJS keeps require("crypto") a plain call; ESM output would wrap it in a dynamic-require shim.
    format: 'cjs',
    platform: 'neutral',
    target: 'es2015',
    external: ['crypto', 'Storage'],
    define: {
      BOARD_HAS_AES: String(smartbeacon.aes),
      BOARD_HAS_SHA256: String(smartbeacon.sha256),
    },
    minifySyntax: minify,
    minifyWhitespace: minify,
    minifyIdentifiers: minify,
    treeShaking: true,
    legalComments: 'none',
    logLevel: 'silent',
  });
  // Our own function scope, so nothing but SB lands in the interpreter's globals.
  const es2015 = `(function(){${result.outputFiles[0]?.text ?? ''}})();`;
  const es5 = ts.transpileModule(es2015, {
    compilerOptions: {
      target: ts.ScriptTarget.ES5,
      module: ts.ModuleKind.None,
      removeComments: true,
      alwaysStrict: false,
    },
  }).outputText;
  // Espruino has no strict mode; the directive would only cost bytes.
  return es5.replace(/(["'])use strict\1;?/g, '');
}

export async function buildBoard(board: BoardId): Promise<{ path: string; bytes: number }> {
  const code = await bundleFor(board);
  const problems = espruinoSyntaxProblems(code);
  if (problems.length)
    throw new Error(`${board}: the bundle uses what Espruino lacks:\n  ${problems.join('\n  ')}`);
  const out = bundlePath(board);
  mkdirSync(`${FIRMWARE_DIR}dist`, { recursive: true });
  const staged = `${out}.es5.js`;
  writeFileSync(staged, code);
  await runEspruinoCli(board, staged, out);
  const final = readFileSync(out, 'utf8');
  const after = espruinoSyntaxProblems(final);
  if (after.length)
    throw new Error(
      `${board}: the Espruino CLI output is not Espruino-safe:\n  ${after.join('\n  ')}`,
    );
  return { path: out, bytes: Buffer.byteLength(final) };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const only = process.argv.slice(2).find((a) => !a.startsWith('-'));
  const boards = only ? BOARDS.filter((b) => b === only.toUpperCase()) : [...BOARDS];
  if (!boards.length) {
    console.error(`unknown board ${only}; one of ${BOARDS.join(', ')}`);
    process.exit(2);
  }
  for (const board of boards) {
    const { path, bytes } = await buildBoard(board);
    console.log(`${board.padEnd(10)} ${bytes.toLocaleString('en-US').padStart(6)} bytes  ${path}`);
  }
}
