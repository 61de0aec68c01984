import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** A board file as kept in firmware/boards: what the Espruino CLI reads, plus our build switches. */
export interface BoardFile {
  readonly info: { readonly id: string; readonly builtin_modules: readonly string[] };
  readonly smartbeacon: {
    readonly aes: boolean;
    readonly sha256: boolean;
    readonly output: string;
  };
}

export const BOARDS = ['PUCKJS', 'MDBT42Q', 'NRF52840DK'] as const;
export type BoardId = (typeof BOARDS)[number];

/** Compiled scripts run from dist/firmware/scripts; the sources sit at firmware/. */
export const FIRMWARE_DIR = fileURLToPath(new URL('../../../firmware/', import.meta.url));

export function boardPath(board: BoardId): string {
  return `${FIRMWARE_DIR}boards/${board}.json`;
}

export function readBoard(board: BoardId): BoardFile {
  return JSON.parse(readFileSync(boardPath(board), 'utf8')) as BoardFile;
}

export function bundlePath(board: BoardId): string {
  return `${FIRMWARE_DIR}dist/${readBoard(board).smartbeacon.output}`;
}
