/**
 * Readers for the deployment files the tests check: Compose (YAML with merge keys and variable
 * interpolation), HAProxy configuration, Dockerfiles with their ignore files, systemd units and
 * env files, and the import graph of the compiled services. Each reads only what the tests use.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, posix, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CORE_SCHEMA, load, mergeTag } from 'js-yaml';

/** The repository root (this file runs from dist/deploy/test/). */
export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const repoPath = (...parts: string[]): string => join(ROOT, ...parts);
export const readRepo = (path: string): string => readFileSync(repoPath(path), 'utf8');

export function exists(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}

// ---- Compose -----------------------------------------------------------------------------

export type Yaml = string | number | boolean | null | Yaml[] | { [key: string]: Yaml };
export type YamlMap = { [key: string]: Yaml };

export function isMap(value: Yaml | undefined): value is YamlMap {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function asMap(value: Yaml | undefined, what: string): YamlMap {
  if (!isMap(value)) throw new Error(`${what} is not a mapping`);
  return value;
}

export function asList(value: Yaml | undefined): Yaml[] {
  return Array.isArray(value) ? value : [];
}

export function parseYaml(text: string): Yaml {
  // Compose files use merge keys (<<: *anchor); YAML 1.2's core schema needs them added.
  return load(text, { schema: CORE_SCHEMA.withTags(mergeTag) }) as Yaml;
}

export interface Interpolation {
  readonly value: Yaml;
  /** Every variable the file refers to, and whether each has a default. */
  readonly variables: Map<string, { hasDefault: boolean }>;
}

const VARIABLE =
  /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g;

/** Compose's variable interpolation in every string value: $$, $V, ${V}, ${V:-d}, ${V-d}, ${V:?e}. */
export function interpolate(value: Yaml, env: Record<string, string | undefined>): Interpolation {
  const variables = new Map<string, { hasDefault: boolean }>();
  const one = (text: string): string =>
    text.replace(VARIABLE, (match, braced?: string, op?: string, arg?: string, bare?: string) => {
      if (match === '$$') return '$';
      const name = (braced ?? bare) as string;
      const set = env[name];
      variables.set(name, { hasDefault: op === ':-' || op === '-' });
      if (op === ':-') return set ? set : (arg ?? '');
      if (op === '-') return set ?? arg ?? '';
      if (op === ':?' || op === '?') {
        if (!set) throw new Error(`compose variable ${name} is required: ${arg ?? ''}`);
        return set;
      }
      return set ?? '';
    });
  const walk = (v: Yaml): Yaml => {
    if (typeof v === 'string') return one(v);
    if (Array.isArray(v)) return v.map(walk);
    if (isMap(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    return v;
  };
  return { value: walk(value), variables };
}

/** A service's environment as strings, from either the mapping or the list form. */
export function serviceEnvironment(service: YamlMap): Record<string, string> {
  const env = service.environment;
  if (Array.isArray(env)) {
    return Object.fromEntries(
      env.map((item) => {
        const [name, ...rest] = String(item).split('=');
        return [name as string, rest.join('=')];
      }),
    );
  }
  if (!isMap(env)) return {};
  return Object.fromEntries(
    Object.entries(env).map(([k, v]) => [k, v === null ? '' : String(v as string | number)]),
  );
}

/** The secrets a service mounts: target path in the container → top-level secret name. */
export function serviceSecrets(service: YamlMap): Map<string, string> {
  const mounts = new Map<string, string>();
  for (const entry of asList(service.secrets)) {
    const source = isMap(entry) ? String(entry.source) : String(entry);
    const target = isMap(entry) && entry.target ? String(entry.target) : source;
    mounts.set(target.startsWith('/') ? target : `/run/secrets/${target}`, source);
  }
  return mounts;
}

/** The networks a service joins, with their aliases. */
export function serviceNetworks(service: YamlMap): Map<string, string[]> {
  const nets = service.networks;
  if (Array.isArray(nets)) return new Map(nets.map((n) => [String(n), []]));
  if (!isMap(nets)) return new Map([['default', []]]);
  return new Map(
    Object.entries(nets).map(([name, options]) => [
      name,
      isMap(options) ? asList(options.aliases).map(String) : [],
    ]),
  );
}

/** Published ports as host address, host port and container port (short syntax). */
export function servicePorts(
  service: YamlMap,
): { hostIp: string; hostPort: string; containerPort: number }[] {
  return asList(service.ports).map((entry) => {
    const parts = String(entry).split(':');
    const containerPort = Number(parts.pop());
    const hostPort = parts.pop() ?? '';
    return { hostIp: parts.join(':'), hostPort, containerPort };
  });
}

// ---- HAProxy -----------------------------------------------------------------------------

export interface HaproxySection {
  readonly kind: string;
  readonly name: string;
  /** Each directive's words, comments removed. */
  readonly lines: string[][];
}

export function parseHaproxy(text: string): HaproxySection[] {
  const sections: HaproxySection[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/(^|\s)#.*$/, '').trim();
    if (!line) continue;
    const words = splitHaproxyWords(line);
    const head = words[0] as string;
    if (
      /^\S/.test(raw) &&
      ['global', 'defaults', 'frontend', 'backend', 'resolvers', 'listen'].includes(head)
    ) {
      sections.push({ kind: head, name: words[1] ?? '', lines: [] });
    } else {
      const current = sections.at(-1);
      if (!current) throw new Error(`haproxy: directive outside a section: ${line}`);
      current.lines.push(words);
    }
  }
  return sections;
}

// Words split on blanks, except inside double quotes or { } conditions.
function splitHaproxyWords(line: string): string[] {
  return line.match(/"[^"]*"|\{[^}]*\}|\S+/g) ?? [];
}

export function section(sections: HaproxySection[], kind: string, name = ''): HaproxySection {
  const found = sections.find((s) => s.kind === kind && s.name === name);
  if (!found) throw new Error(`haproxy: no ${kind} ${name}`);
  return found;
}

/** The value after `key` on a directive line (e.g. "port" in a server line). */
export function wordAfter(words: string[], key: string): string | undefined {
  const i = words.indexOf(key);
  return i >= 0 ? words[i + 1] : undefined;
}

// ---- Dockerfiles and their ignore files --------------------------------------------------------

export interface Instruction {
  readonly op: string;
  readonly flags: Record<string, string>;
  readonly args: string[];
  readonly raw: string;
}

export interface Stage {
  readonly from: string;
  readonly name: string | undefined;
  readonly instructions: Instruction[];
}

/** Stages and their instructions, continuation lines joined, comments dropped. */
export function parseDockerfile(text: string): Stage[] {
  const logical: string[] = [];
  let pending = '';
  for (const raw of text.split('\n')) {
    if (/^\s*#/.test(raw)) continue;
    const line = raw.replace(/\s+$/, '');
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      continue;
    }
    const full = (pending + line).trim();
    pending = '';
    if (full) logical.push(full);
  }
  const stages: Stage[] = [];
  for (const line of logical) {
    const [op = '', ...rest] = line.split(/\s+/);
    const flags: Record<string, string> = {};
    while (rest[0]?.startsWith('--')) {
      const [key, ...value] = (rest.shift() as string).slice(2).split('=');
      flags[key as string] = value.join('=');
    }
    let args = rest;
    const json = rest.join(' ');
    if (json.startsWith('[')) args = JSON.parse(json) as string[];
    const instruction = { op: op.toUpperCase(), flags, args, raw: line };
    if (instruction.op === 'FROM') {
      const asIndex = args.findIndex((a) => a.toUpperCase() === 'AS');
      stages.push({
        from: args[0] as string,
        name: asIndex >= 0 ? args[asIndex + 1] : undefined,
        instructions: [],
      });
    } else {
      const stage = stages.at(-1);
      if (!stage) throw new Error(`Dockerfile: ${op} before FROM`);
      stage.instructions.push(instruction);
    }
  }
  return stages;
}

/** A glob (Dockerfile COPY source or .dockerignore pattern) as a regular expression on paths. */
export function globToRegExp(glob: string): RegExp {
  let out = '';
  const g = glob.replace(/^\/+/, '').replace(/\/+$/, '');
  for (let i = 0; i < g.length; i++) {
    const c = g[i] as string;
    if (c === '*' && g[i + 1] === '*') {
      out += g[i + 2] === '/' ? '(?:.*/)?' : '.*';
      i += g[i + 2] === '/' ? 2 : 1;
    } else if (c === '*') out += '[^/]*';
    else if (c === '?') out += '[^/]';
    else out += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${out}$`);
}

/** Whether a .dockerignore excludes a path (or one of its parent folders); "!" re-includes. */
export function dockerIgnored(patterns: string[], path: string): boolean {
  const parts = path.split('/');
  let ignored = false;
  for (const pattern of patterns) {
    const negate = pattern.startsWith('!');
    const re = globToRegExp(negate ? pattern.slice(1) : pattern);
    for (let n = 1; n <= parts.length; n++) {
      if (re.test(parts.slice(0, n).join('/'))) {
        ignored = !negate;
        break;
      }
    }
  }
  return ignored;
}

export function readIgnoreFile(path: string): string[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
}

/** Every file under `dir` (relative to it, posix separators). */
export function listFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, entry.name);
      if (entry.isDirectory()) walk(p);
      else out.push(relative(dir, p).split('\\').join('/'));
    }
  };
  walk(dir);
  return out;
}

// ---- systemd -------------------------------------------------------------------------------

/** A unit file's settings by section; a key may repeat (Environment=, LoadCredential=). */
export function parseUnit(text: string): Map<string, [string, string][]> {
  const sections = new Map<string, [string, string][]>();
  let current: [string, string][] | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      current = [];
      sections.set(header[1] as string, current);
      continue;
    }
    const eq = line.indexOf('=');
    if (!current || eq < 0) throw new Error(`unit: cannot read "${line}"`);
    current.push([line.slice(0, eq).trim(), line.slice(eq + 1).trim()]);
  }
  return sections;
}

export function unitValues(
  unit: Map<string, [string, string][]>,
  section: string,
  key: string,
): string[] {
  return (unit.get(section) ?? []).filter(([k]) => k === key).map(([, v]) => v);
}

/** KEY=value lines (EnvironmentFile= and Environment= syntax, optional double quotes). */
export function parseEnvAssignments(lines: string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const raw of lines) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const unquoted = line.startsWith('"') && line.endsWith('"') ? line.slice(1, -1) : line;
    const eq = unquoted.indexOf('=');
    if (eq < 0) throw new Error(`env: cannot read "${line}"`);
    let value = unquoted.slice(eq + 1);
    if (value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    env[unquoted.slice(0, eq)] = value;
  }
  return env;
}

// ---- Imports of the compiled services -------------------------------------------------------

/** The compiled files an entry point loads (relative to the repo), and the packages it imports. */
export function importClosure(entry: string): { files: Set<string>; packages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const stack = [resolve(ROOT, entry)];
  while (stack.length) {
    const file = stack.pop() as string;
    const rel = relative(ROOT, file).split('\\').join('/');
    if (files.has(rel)) continue;
    files.add(rel);
    const source = readFileSync(file, 'utf8');
    for (const m of source.matchAll(/(?:\bfrom\s*|\bimport\s*\(?\s*)['"]([^'"]+)['"]/g)) {
      const spec = m[1] as string;
      if (spec.startsWith('.')) stack.push(resolve(dirname(file), spec));
      else if (!spec.startsWith('node:')) {
        const parts = spec.split('/');
        packages.add(spec.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] as string));
      }
    }
  }
  return { files, packages };
}

export const posixJoin = posix.join;
