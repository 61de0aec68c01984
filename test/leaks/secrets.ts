import type { Database } from '../../backend-kit/db.js';

/** A value that must not appear somewhere: bytes (keys, tokens) or text (an address). */
export interface Secret {
  readonly name: string;
  readonly bytes: Uint8Array;
}

export const textSecret = (name: string, text: string): Secret => ({
  name,
  bytes: new Uint8Array(Buffer.from(text, 'utf8')),
});

/**
 * Every text form the bytes can take inside a longer string: hex (any case), base64 and
 * base64url at each of the three alignments a longer encoded blob could give them, and, for
 * text secrets, the text itself.
 */
export function textForms(s: Secret): { form: string; text: string }[] {
  const bytes = Buffer.from(s.bytes);
  const forms = [{ form: 'hex', text: bytes.toString('hex') }];
  for (let k = 0; k < 3; k++) {
    const enc = Buffer.concat([Buffer.alloc(k), bytes]).toString('base64');
    // Skip the group the padding bytes share, and the last group (it depends on what follows).
    const start = k === 0 ? 0 : 4;
    const end = Math.floor((k + bytes.length) / 3) * 4;
    if (end - start < 8) continue;
    const part = enc.slice(start, end);
    forms.push({ form: `base64@${k}`, text: part });
    forms.push({ form: `base64url@${k}`, text: part.replace(/\+/g, '-').replace(/\//g, '_') });
  }
  const utf8 = bytes.toString('utf8');
  if (/^[\x20-\x7e]+$/.test(utf8)) forms.push({ form: 'text', text: utf8 });
  return forms;
}

/** Where a value was found, for the failure message. */
export interface Place {
  readonly where: string;
  readonly text: string;
  readonly bytes?: Buffer;
}

/** Every cell of every table, as text (bytea as hex) and, for bytea, its raw bytes too. */
export async function dumpTables(db: Database, label: string): Promise<Place[]> {
  const { rows: tables } = await db.query<{ name: string }>(
    `SELECT table_name AS name FROM information_schema.tables
      WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY 1`,
  );
  const places: Place[] = [];
  for (const { name } of tables) {
    const { rows } = await db.query<Record<string, unknown>>(`SELECT * FROM "${name}"`);
    rows.forEach((row, i) => {
      for (const [column, value] of Object.entries(row)) {
        if (value === null || value === undefined) continue;
        const where = `${label} table ${name}, column ${column}, row ${i + 1}`;
        if (value instanceof Uint8Array) {
          const bytes = Buffer.from(value);
          places.push({ where, text: bytes.toString('hex'), bytes });
        } else
          places.push({
            where,
            text: typeof value === 'string' ? value : JSON.stringify(value, bigints),
          });
      }
    });
  }
  return places;
}

const bigints = (_k: string, v: unknown) => (typeof v === 'bigint' ? v.toString() : v);

/** Log lines as places: "app backend log line 12: {…}". */
export function logPlaces(lines: readonly string[], label: string): Place[] {
  return lines.map((text, i) => ({
    where: `${label} log line ${i + 1}: ${text.slice(0, 160)}`,
    text,
  }));
}

/** Every place holding any form of any secret, as "<secret> (<form>) in <where>". */
export function findSecrets(places: readonly Place[], secrets: readonly Secret[]): string[] {
  const found: string[] = [];
  for (const s of secrets) {
    const forms = textForms(s).map((f) => ({ ...f, lower: f.text.toLowerCase() }));
    const raw = Buffer.from(s.bytes);
    for (const p of places) {
      const lower = p.text.toLowerCase();
      for (const f of forms) {
        const hit =
          f.form === 'hex' || f.form === 'text' ? lower.includes(f.lower) : p.text.includes(f.text);
        if (hit) found.push(`${s.name} (${f.form}) in ${p.where}`);
      }
      if (p.bytes?.includes(raw)) found.push(`${s.name} (raw bytes) in ${p.where}`);
    }
  }
  return found;
}

/** IPv4 literals, IPv6 loopback and IPv4-mapped forms. */
const IP_PATTERNS: readonly [string, RegExp][] = [
  ['an IPv4 address', /(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])/],
  ['the IPv6 loopback', /(?<![0-9a-f:])::1(?![0-9a-f:])/i],
  ['an IPv4-mapped IPv6 address', /::ffff:/i],
];

export function findAddresses(places: readonly Place[]): string[] {
  const found: string[] = [];
  for (const p of places)
    for (const [name, re] of IP_PATTERNS) {
      const m = re.exec(p.text);
      if (m) found.push(`${name} (${m[0]}) in ${p.where}`);
    }
  return found;
}
