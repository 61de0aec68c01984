/** What the CLI touches outside its arguments, so tests can run main() in-process. */
export interface Io {
  /** One line (or block) of standard output, without the trailing newline. */
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  /** All of standard input, as text (for --sk-t-past -). */
  readonly readStdin: () => Promise<string>;
  /** Unix milliseconds: the JWT's iat, "--from now", and whether a listed absence is under way. */
  readonly now: () => number;
}

const MAX_STDIN = 64 * 1024;

async function readProcessStdin(): Promise<string> {
  if (process.stdin.isTTY)
    process.stderr.write('SK_T_PAST (64 hex digits), then Enter and Ctrl-D: ');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin) {
    const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    size += b.length;
    if (size > MAX_STDIN) break;
    chunks.push(b);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  for (const c of chunks) c.fill(0);
  return text;
}

export const processIo: Io = {
  stdout: (text) => void process.stdout.write(`${text}\n`),
  stderr: (text) => void process.stderr.write(`${text}\n`),
  readStdin: readProcessStdin,
  now: () => Date.now(),
};
