/**
 * Campaign: password guesses sent in parallel against the sign-in lockout, on PGlite and (with
 * DATABASE_URL) PostgreSQL. Each round creates an officer, fires AUTH_GUESSES wrong passwords at
 * once, then tries the right one. The lockout holds when every round answers exactly five
 * guesses as failures (the rest as locked) and refuses the right password afterwards.
 *
 *   node dist/test/auth/lockout-campaign.js            (AUTH_ROUNDS=20, AUTH_GUESSES=25)
 */
import { LOCKOUT_MS, MAX_FAILED_SIGN_INS } from '../../police-backend/src/officers.js';
import { addOfficer, signInRaw, startPolice } from '../../police-backend/test/harness.js';
import { databaseTargets } from '../support/databases.js';

const ROUNDS = Number(process.env.AUTH_ROUNDS ?? 20);
const GUESSES = Number(process.env.AUTH_GUESSES ?? 25);

interface TargetResult {
  readonly target: string;
  readonly rounds: number;
  readonly guessesPerRound: number;
  /** Guesses answered as counted failures (401), lowest and highest over the rounds. */
  readonly failuresAnswered: { readonly min: number; readonly max: number };
  /** Rounds where the right password signed in after the parallel guesses: must be 0. */
  readonly signedInAfterGuesses: number;
  /** Rounds where the right password signed in once the lock had expired: must be every round. */
  readonly signedInAfterLock: number;
  readonly seconds: number;
}

async function campaign(target: ReturnType<typeof databaseTargets>[number]): Promise<TargetResult> {
  const started = Date.now();
  const db = await target.open();
  const h = await startPolice(db);
  const failures: number[] = [];
  let signedInAfterGuesses = 0;
  let signedInAfterLock = 0;
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const username = `guessed-${round}`;
      await addOfficer(h, username);
      const answers = await Promise.all(
        Array.from({ length: GUESSES }, (_, i) => signInRaw(h, username, `wrong password ${i}`)),
      );
      failures.push(answers.filter((a) => a.status === 401).length);
      if ((await signInRaw(h, username)).status === 200) signedInAfterGuesses++;
      h.clock.advance(LOCKOUT_MS);
      if ((await signInRaw(h, username)).status === 200) signedInAfterLock++;
    }
  } finally {
    await h.backend.close();
    await db.close();
  }
  return {
    target: target.name,
    rounds: ROUNDS,
    guessesPerRound: GUESSES,
    failuresAnswered: { min: Math.min(...failures), max: Math.max(...failures) },
    signedInAfterGuesses,
    signedInAfterLock,
    seconds: Math.round((Date.now() - started) / 100) / 10,
  };
}

const results: TargetResult[] = [];
for (const target of databaseTargets()) results.push(await campaign(target));
console.log(JSON.stringify({ date: new Date().toISOString(), results }, null, 2));
const held = results.every(
  (r) =>
    r.failuresAnswered.max === MAX_FAILED_SIGN_INS &&
    r.signedInAfterGuesses === 0 &&
    r.signedInAfterLock === r.rounds,
);
console.log(held ? 'lockout held in every round' : 'LOCKOUT BROKEN');
process.exitCode = held ? 0 : 1;
