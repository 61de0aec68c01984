import { rm } from 'node:fs/promises';
import { bytesToHex } from '../../../protocol/bytes.js';
import {
  openSealedKeyFile,
  parseTPast,
  parseWindow,
  readAuthorityKey,
  readSkTPast,
} from '../inputs.js';
import type { Context, Outcome } from './outcome.js';
import { expectStatus, postSigned, serverFrom } from './server.js';

/**
 * register: open the sealed key file, send (SK_T_PAST, T_PAST, ID_BEACON, SK_BEACON) once, keep
 * nothing. The tuple lives only in this process's memory while it is sent; the byte buffers are
 * zeroed afterwards (the JSON strings cannot be, and go with the process).
 */
export async function registerCommand({ values, io }: Context): Promise<Outcome> {
  // Cheap checks first, so a typo fails before any file or standard input is read.
  const tPast = parseTPast(values['t-past'] as string);
  const windowSeconds = values.window === undefined ? undefined : parseWindow(values.window);
  const server = await serverFrom(values);
  const authority = await readAuthorityKey(values.key as string);
  if (authority.warning) io.stderr(authority.warning);
  const sealedPath = values['sealed-key'] as string;
  const { beaconId, skBeacon } = await openSealedKeyFile(sealedPath, authority.pem);
  let skTPast: Uint8Array | undefined;
  let body: Buffer | undefined;
  let answer;
  try {
    const source = await readSkTPast(values['sk-t-past'] as string, io.readStdin);
    skTPast = source.bytes;
    if (source.warning) io.stderr(source.warning);
    body = Buffer.from(
      JSON.stringify({
        skTPast: bytesToHex(skTPast),
        tPast,
        beaconId,
        skBeacon: bytesToHex(skBeacon),
        ...(windowSeconds === undefined ? {} : { windowSeconds }),
      }),
      'utf8',
    );
    answer = await postSigned(
      server,
      '/v1/quarantines',
      body,
      authority.key,
      values,
      io,
      'run the same command again (a registration that went through answers BEACON_IN_USE)',
    );
  } finally {
    skBeacon.fill(0);
    skTPast?.fill(0);
    body?.fill(0);
  }
  const result = expectStatus(answer, 201, `the registration of beacon ${beaconId}`);
  const quarantineId = typeof result.quarantineId === 'string' ? result.quarantineId : null;

  let sealedKeyDeleted = false;
  const lines = [
    `registered: beacon ${beaconId}, T_PAST ${tPast}, window ${windowSeconds === undefined ? "the server's default" : `${windowSeconds} s`}`,
    `quarantine ${quarantineId ?? '(no id returned)'}; monitoring starts once the police backend has enabled the beacon`,
  ];
  if (values['delete-sealed-key']) {
    try {
      await rm(sealedPath);
      sealedKeyDeleted = true;
      lines.push(`deleted ${sealedPath}`);
    } catch (error) {
      io.stderr(
        `warning: registered, but ${sealedPath} could not be deleted (${(error as NodeJS.ErrnoException).code ?? String(error)}): delete it by hand`,
      );
    }
  } else {
    lines.push(`${sealedPath} is no longer needed: delete it (or use --delete-sealed-key)`);
  }
  return {
    exitCode: 0,
    json: {
      status: answer.status,
      quarantineId,
      beaconId,
      tPast,
      windowSeconds: windowSeconds ?? null,
      sealedKeyDeleted,
    },
    text: lines.join('\n'),
  };
}
