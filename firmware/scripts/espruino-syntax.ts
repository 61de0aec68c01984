import { type Node, parse } from 'acorn';
import { simple } from 'acorn-walk';

/**
 * Problems the Espruino interpreter would have with `code` (espruino-facts.md §8): anything beyond
 * ES5 syntax, plus what Espruino lacks even in ES5 — function hoisting, labels, strict mode, and a
 * few missing built-ins. An empty list means the bundle may be sent to a board.
 */
export function espruinoSyntaxProblems(code: string): string[] {
  let program: Node;
  try {
    program = parse(code, { ecmaVersion: 5, sourceType: 'script', locations: true });
  } catch (err) {
    return [`not ES5: ${(err as Error).message}`];
  }
  const problems: string[] = [];
  const at = (n: Node) => `line ${(n.loc?.start.line ?? 0).toString()}`;

  if (/(^|[;{}\s])["']use strict["']/.test(code))
    problems.push('"use strict" directive (Espruino has no strict mode)');

  simple(program, {
    LabeledStatement(n) {
      problems.push(`label at ${at(n)} (unsupported)`);
    },
    MemberExpression(n) {
      const m = n as unknown as {
        object: { type: string; name?: string };
        property: { type: string; name?: string };
      };
      const name = `${m.object.name ?? ''}.${m.property.name ?? ''}`;
      if (
        m.object.type === 'Identifier' &&
        ['Math.trunc', 'Number.isNaN', 'Math.imul', 'Number.isInteger'].includes(name)
      ) {
        problems.push(`${name} at ${at(n)} (missing on Espruino)`);
      }
      if (m.property.type === 'Identifier' && m.property.name === 'flat')
        problems.push(`.flat at ${at(n)} (missing on Espruino)`);
    },
    Identifier(n) {
      const name = (n as unknown as { name: string }).name;
      if (
        [
          'Map',
          'Set',
          'WeakMap',
          'Symbol',
          'BigInt',
          'RangeError',
          'TypeError',
          'exports',
          'module',
        ].includes(name)
      ) {
        problems.push(`${name} at ${at(n)} (missing on Espruino)`);
      }
    },
    CallExpression(n) {
      const c = n as unknown as {
        callee: { type: string; name?: string };
        arguments: { type: string; value?: unknown }[];
      };
      if (c.callee.type === 'Identifier' && c.callee.name === 'require') {
        const arg = c.arguments[0];
        if (!arg || arg.type !== 'Literal' || !['crypto', 'Storage'].includes(String(arg.value))) {
          problems.push(`require of a module that is not built in, at ${at(n)}`);
        }
      }
    },
  });

  checkHoisting(program, problems, at);
  return problems;
}

type Body = { type: string; body: Node[] | Node };

/** In every body, a function declared by a statement must not be called by an earlier statement. */
function checkHoisting(program: Node, problems: string[], at: (n: Node) => string): void {
  const bodies: Node[][] = [(program as unknown as { body: Node[] }).body];
  simple(program, {
    FunctionDeclaration(n) {
      bodies.push((n as unknown as { body: { body: Node[] } }).body.body);
    },
    FunctionExpression(n) {
      bodies.push((n as unknown as { body: { body: Node[] } }).body.body);
    },
  });
  for (const statements of bodies) {
    const laterDeclared = new Map<string, number>();
    statements.forEach((s, i) => {
      if (s.type === 'FunctionDeclaration')
        laterDeclared.set((s as unknown as { id: { name: string } }).id.name, i);
    });
    statements.forEach((s, i) => {
      if (s.type === 'FunctionDeclaration') return;
      for (const call of directCalls(s)) {
        const declaredAt = laterDeclared.get(call.name);
        if (declaredAt !== undefined && declaredAt > i) {
          problems.push(
            `${call.name}() called at ${at(call.node)} before its declaration (no hoisting on Espruino)`,
          );
        }
      }
    });
  }
}

/** Calls by plain name made when `statement` runs (not inside functions it merely defines). */
function directCalls(statement: Node): { name: string; node: Node }[] {
  const found: { name: string; node: Node }[] = [];
  const visit = (n: unknown): void => {
    if (!n || typeof n !== 'object') return;
    const node = n as Body & { callee?: { type: string; name?: string } };
    if (node.type === 'FunctionExpression' || node.type === 'FunctionDeclaration') return;
    if (node.type === 'CallExpression' && node.callee?.type === 'Identifier' && node.callee.name) {
      found.push({ name: node.callee.name, node: node as unknown as Node });
    }
    for (const value of Object.values(node)) {
      if (Array.isArray(value)) value.forEach(visit);
      else if (value && typeof value === 'object' && 'type' in value) visit(value);
    }
  };
  visit(statement);
  return found;
}
