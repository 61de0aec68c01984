/**
 * How much JavaScript the beacon runs per token, counted in the emulation: the firmware is bundled
 * without the minifier (statements stay statements), every statement, loop iteration and function
 * entry gets a counter, and the Espruino built-ins it calls are wrapped to count them. The counts depend only
 * on the code path, not on Node's speed; turning them into device time needs an assumed cost per
 * statement (energy.ts).
 */
import ts from 'typescript';
import { EspruinoDevice, VirtualClock } from '../../firmware/emulator/index.js';
import { type BoardId, readBoard } from '../../firmware/scripts/boards.js';
import { bundleFor } from '../../firmware/scripts/build.js';

/** Counters the instrumented bundle bumps: statements, loop iterations, function entries, built-in calls. */
export interface WorkCount {
  statements: number;
  iterations: number;
  functions: number;
  builtins: number;
}

export interface TokenWork {
  readonly board: BoardId;
  /** Boot and provisioning, once per installation (HKDF, services, first token). */
  readonly provision: WorkCount;
  /** A token in the steady state (median over the run). */
  readonly perToken: WorkCount;
  /** The extra work of the token that reserves the next counter block (one in COUNTER_BLOCK). */
  readonly blockReservation: WorkCount;
  readonly tokensRun: number;
  /** Wall time per token in Node's vm: emulator timing, not device timing. */
  readonly emulatorMsPerToken: number;
  /** Built-in calls by name, averaged over the run's tokens. */
  readonly builtinsPerToken: Record<string, number>;
}

const COUNTER = '__sbWork';

/** The firmware bundled as build.ts does, minus the minifier, lowered to ES5. */
const readableBundle = (board: BoardId): Promise<string> => bundleFor(board, { minify: false });

/** Insert a counter before every statement, at every loop iteration and at every function entry. */
function instrument(code: string): string {
  const f = ts.factory;
  const bump = (field: 'statements' | 'iterations' | 'functions') =>
    f.createExpressionStatement(
      f.createPostfixIncrement(
        f.createPropertyAccessExpression(f.createIdentifier(COUNTER), field),
      ),
    );
  const transformer: ts.TransformerFactory<ts.SourceFile> = (ctx) => {
    const list = (statements: readonly ts.Statement[]): ts.Statement[] => {
      const out: ts.Statement[] = [];
      for (const s of statements) {
        // A declaration is not executed where it stands; everything else is one step.
        if (!ts.isFunctionDeclaration(s)) out.push(bump('statements'));
        out.push(ts.visitNode(s, visit) as ts.Statement);
      }
      return out;
    };
    // Bodies of if/loops become blocks, so every execution of them is counted.
    const body = (s: ts.Statement): ts.Statement =>
      ts.visitNode(ts.isBlock(s) ? s : f.createBlock([s], true), visit) as ts.Statement;
    // A loop's test and step cost about one statement per iteration, as in the docs' loop figure.
    const loopBody = (s: ts.Statement): ts.Statement => {
      const block = body(s) as ts.Block;
      return f.updateBlock(block, [bump('iterations'), ...block.statements]);
    };
    const visit = (node: ts.Node): ts.Node => {
      if (ts.isBlock(node)) return f.updateBlock(node, list(node.statements));
      if (ts.isCaseClause(node))
        return f.updateCaseClause(
          node,
          ts.visitNode(node.expression, visit) as ts.Expression,
          list(node.statements),
        );
      if (ts.isDefaultClause(node)) return f.updateDefaultClause(node, list(node.statements));
      if (ts.isIfStatement(node))
        return f.updateIfStatement(
          node,
          ts.visitNode(node.expression, visit) as ts.Expression,
          body(node.thenStatement),
          node.elseStatement &&
            (ts.isIfStatement(node.elseStatement)
              ? (ts.visitNode(node.elseStatement, visit) as ts.Statement)
              : body(node.elseStatement)),
        );
      if (ts.isForStatement(node))
        return f.updateForStatement(
          node,
          node.initializer && (ts.visitNode(node.initializer, visit) as ts.ForInitializer),
          node.condition && (ts.visitNode(node.condition, visit) as ts.Expression),
          node.incrementor && (ts.visitNode(node.incrementor, visit) as ts.Expression),
          loopBody(node.statement),
        );
      if (ts.isWhileStatement(node))
        return f.updateWhileStatement(
          node,
          ts.visitNode(node.expression, visit) as ts.Expression,
          loopBody(node.statement),
        );
      if (ts.isDoStatement(node))
        return f.updateDoStatement(
          node,
          loopBody(node.statement),
          ts.visitNode(node.expression, visit) as ts.Expression,
        );
      if ((ts.isFunctionDeclaration(node) || ts.isFunctionExpression(node)) && node.body) {
        const visited = ts.visitEachChild(node, visit, ctx);
        const inner = (visited.body as ts.Block).statements;
        const counted = f.createBlock([bump('functions'), ...inner], true);
        return ts.isFunctionDeclaration(visited)
          ? f.updateFunctionDeclaration(
              visited,
              visited.modifiers,
              visited.asteriskToken,
              visited.name,
              visited.typeParameters,
              visited.parameters,
              visited.type,
              counted,
            )
          : f.updateFunctionExpression(
              visited as ts.FunctionExpression,
              (visited as ts.FunctionExpression).modifiers,
              visited.asteriskToken,
              visited.name,
              visited.typeParameters,
              visited.parameters,
              visited.type,
              counted,
            );
      }
      return ts.visitEachChild(node, visit, ctx);
    };
    return (sf) => f.updateSourceFile(sf, list(sf.statements));
  };
  const source = ts.createSourceFile(
    'beacon.js',
    code,
    ts.ScriptTarget.ES5,
    true,
    ts.ScriptKind.JS,
  );
  const out = ts.transform(source, [transformer]);
  const text = ts.createPrinter().printFile(out.transformed[0] as ts.SourceFile);
  out.dispose();
  return text;
}

/**
 * Runs before the bundle (.boot1; .boot0 is the lock file): the counters, and wrappers that count
 * every call into the board's built-ins by name.
 */
const PRELUDE = `var ${COUNTER}={statements:0,iterations:0,functions:0,builtins:0,byName:{}};
(function(){
function w(o,k,n){var g=o&&o[k];if(typeof g!=='function'||g.__c)return;
var c=function(){${COUNTER}.builtins++;${COUNTER}.byName[n]=(${COUNTER}.byName[n]||0)+1;return g.apply(o,arguments);};
c.__c=1;o[k]=c;}
['setAdvertising','updateServices','setServices','setTxPower'].forEach(function(k){w(NRF,k,'NRF.'+k);});
['hwRand','getBattery','kickWatchdog','enableWatchdog'].forEach(function(k){w(E,k,'E.'+k);});
var r=require;require=function(m){var x=r(m);
if(m==='crypto'){w(x,'SHA256','crypto.SHA256');if(x.AES)w(x.AES,'encrypt','crypto.AES.encrypt');}
if(m==='Storage'){['read','readJSON','readArrayBuffer','write','writeJSON','erase'].forEach(function(k){w(x,k,'Storage.'+k);});}
return x;};
})();`;

function snapshot(device: EspruinoDevice): WorkCount & { byName: Record<string, number> } {
  const line = (device.console(`print(JSON.stringify(${COUNTER}))`, 'serial') ?? [])[0];
  if (!line) throw new Error(`no work counters: ${device.errors.join('; ')}`);
  return JSON.parse(line) as WorkCount & { byName: Record<string, number> };
}

function minus(a: WorkCount, b: WorkCount): WorkCount {
  return {
    statements: a.statements - b.statements,
    iterations: a.iterations - b.iterations,
    functions: a.functions - b.functions,
    builtins: a.builtins - b.builtins,
  };
}

function medianOf(values: number[]): number {
  const s = [...values].sort((x, y) => x - y);
  return s[Math.floor(s.length / 2)] as number;
}

/** Lock keeps the console here, so the counters stay readable; the lock itself is otherwise real. */
const KEEP_CONSOLE = `E.setConsole=function(){${COUNTER}.builtins++;};`;

/**
 * Provision an instrumented beacon (and lock it: the schedule it runs for months), run `tokens`
 * token periods, and count the work, the schedule's own timers included.
 */
export async function measureTokenWork(
  board: BoardId,
  tokens: number,
  counterBlock: number,
  air: { readonly lock: boolean; readonly burst: number } = { lock: false, burst: 0 },
): Promise<TokenWork> {
  const code = instrument(await readableBundle(board));
  const { smartbeacon } = readBoard(board);
  const clock = new VirtualClock(1_795_392_000_000);
  const device = new EspruinoDevice({
    clock,
    crypto: { aes: smartbeacon.aes, sha256: smartbeacon.sha256 },
    battery: board === 'PUCKJS' ? 87 : null,
  });
  // The prelude and the code go to flash as firmware:flash leaves them, then the board boots.
  device.install(air.lock ? PRELUDE + KEEP_CONSOLE : PRELUDE, '.boot1');
  device.install(code);
  const request = {
    id: 'SB-BENCH',
    key: '4a'.repeat(32),
    time: Math.floor(clock.now() / 1000),
    tx: 0,
    cadence: 60,
    interval: 375,
    burst: air.burst,
  };
  const answer = device.console(`SB.provision(${JSON.stringify(request)})`, 'serial') ?? [];
  if (!answer.some((l) => l.startsWith('SB:{"ok":true')))
    throw new Error(`provisioning failed: ${answer.join(' ')} ${device.errors.join('; ')}`);
  if (air.lock) {
    const locked = device.console('SB.lock()', 'serial') ?? [];
    if (!locked.some((l) => l.startsWith('SB:{"ok":true')))
      throw new Error(`lock failed: ${locked.join(' ')}`);
    clock.advance(1000);
  }
  const provision = snapshot(device);
  const per: WorkCount[] = [];
  let previous = provision;
  const started = process.hrtime.bigint();
  for (let i = 0; i < tokens; i++) {
    clock.advance(60_000);
    const now = snapshot(device);
    per.push(minus(now, previous));
    previous = now;
  }
  const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
  if (device.errors.length) throw new Error(`firmware errors: ${device.errors.join('; ')}`);
  const typical: WorkCount = {
    statements: medianOf(per.map((w) => w.statements)),
    iterations: medianOf(per.map((w) => w.iterations)),
    functions: medianOf(per.map((w) => w.functions)),
    builtins: medianOf(per.map((w) => w.builtins)),
  };
  // Every counterBlock tokens one token also reserves the next block: its extra is that step.
  const heaviest = per.reduce((a, b) => (b.statements > a.statements ? b : a));
  if (tokens > counterBlock && heaviest.statements === typical.statements)
    throw new Error('no counter block reservation seen');
  const builtinsPerToken: Record<string, number> = {};
  for (const [name, n] of Object.entries(previous.byName)) {
    const perToken = (n - (provision.byName[name] ?? 0)) / tokens;
    builtinsPerToken[name] = Math.round(perToken * 1000) / 1000;
  }
  return {
    board,
    provision: {
      statements: provision.statements,
      iterations: provision.iterations,
      functions: provision.functions,
      builtins: provision.builtins,
    },
    perToken: typical,
    blockReservation: minus(heaviest, typical),
    tokensRun: tokens,
    emulatorMsPerToken: elapsedMs / tokens,
    builtinsPerToken,
  };
}
