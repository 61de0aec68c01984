import { parseBeaconId, readAuthorityKey } from '../inputs.js';
import type { Context, Outcome } from './outcome.js';
import { expectStatus, postSigned, serverFrom } from './server.js';

/** end --beacon <id>: the app backend stops monitoring and deletes both keys at once. */
export async function endCommand({ values, io }: Context): Promise<Outcome> {
  const beaconId = parseBeaconId(values.beacon as string);
  const server = await serverFrom(values);
  const authority = await readAuthorityKey(values.key as string);
  if (authority.warning) io.stderr(authority.warning);
  const answer = await postSigned(
    server,
    `/v1/quarantines/${encodeURIComponent(beaconId)}/end`,
    Buffer.from('{}'),
    authority.key,
    values,
    io,
    'run the same command again (an end that went through answers NO_ACTIVE_QUARANTINE)',
  );
  const result = expectStatus(answer, 200, `the end of the quarantine of beacon ${beaconId}`);
  return {
    exitCode: 0,
    json: { status: answer.status, beaconId, state: result.state ?? null },
    text: `ended the quarantine of beacon ${beaconId}: monitoring stopped, the app backend deleted its keys`,
  };
}
