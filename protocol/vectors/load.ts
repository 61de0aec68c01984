import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { TokenVectorFile } from './schema.js';

/** The JSON lives beside the source; compiled code runs from dist/protocol/vectors. */
export const TOKEN_VECTORS_PATH = fileURLToPath(
  new URL('../../../protocol/vectors/token-vectors.json', import.meta.url),
);

export function loadTokenVectors(): TokenVectorFile {
  return JSON.parse(readFileSync(TOKEN_VECTORS_PATH, 'utf8')) as TokenVectorFile;
}
