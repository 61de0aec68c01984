import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { espruinoSyntaxProblems } from '../scripts/espruino-syntax.js';
import { flashArguments } from '../scripts/flash.js';

describe('Espruino syntax gate', () => {
  const rejects = (code: string, pattern: RegExp) => {
    const problems = espruinoSyntaxProblems(code);
    assert.ok(
      problems.some((p) => pattern.test(p)),
      `expected ${pattern} in ${JSON.stringify(problems)}`,
    );
  };

  it('accepts plain ES5 with functions declared before use', () => {
    assert.deepEqual(
      espruinoSyntaxProblems('function f(a){return a+1}var x=f(1);require("Storage").read("x");'),
      [],
    );
  });

  it('refuses ES2015+ syntax', () => {
    for (const code of [
      'let a = 1;',
      'var f = () => 1;',
      'class A {}',
      'var {a} = b;',
      'f(...a);',
      'var s = `x`;',
      'var a = b ?? c;',
      'var a = b?.c;',
      'var a = 2 ** 3;',
    ]) {
      rejects(code, /not ES5/);
    }
  });

  it('refuses calling a function before its declaration, at top level and inside functions', () => {
    rejects('f(); function f(){}', /f\(\) called .* before its declaration/);
    rejects('function g(){ h(); function h(){} }', /h\(\) called/);
  });

  it('allows calls inside functions to functions declared later (they run after both exist)', () => {
    assert.deepEqual(
      espruinoSyntaxProblems('function a(){ return b(); } function b(){ return 1; } a();'),
      [],
    );
  });

  it('refuses strict mode, labels, missing built-ins and modules that are not built in', () => {
    rejects('"use strict"; var a = 1;', /use strict/);
    rejects('outer: for(;;){ break outer; }', /label/);
    rejects('var m = new Map();', /Map/);
    rejects('var t = Math.trunc(1.5);', /Math\.trunc/);
    rejects('throw new RangeError("x");', /RangeError/);
    rejects('var x = require("http2");', /not built in/);
    rejects('module.exports = 1;', /module/);
  });
});

describe('firmware:flash', () => {
  it('flashes over BLE to .bootrst with the board file kept in the repo', () => {
    assert.deepEqual(flashArguments('PUCKJS', 'aa:bb:cc:dd:ee:ff'), [
      '--board',
      'firmware/boards/PUCKJS.json',
      '-p',
      'AA:BB:CC:DD:EE:FF',
      '--config',
      'SAVE_ON_SEND=2',
      'firmware/dist/beacon.js',
    ]);
  });

  it('flashes over serial without BLE, at the given baud rate', () => {
    assert.deepEqual(flashArguments('MDBT42Q', '/dev/ttyUSB0', 115200).slice(0, 5), [
      '--no-ble',
      '-b',
      '115200',
      '--board',
      'firmware/boards/MDBT42Q.json',
    ]);
  });

  it('--dry-run prints the exact command and sends nothing', async () => {
    const script = fileURLToPath(new URL('../scripts/flash.js', import.meta.url));
    const root = fileURLToPath(new URL('../../../', import.meta.url));
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [script, '--dry-run', '--port', 'AA:BB:CC:DD:EE:FF'],
      { cwd: root },
    );
    assert.equal(
      stdout.trim(),
      'npx espruino --board firmware/boards/PUCKJS.json -p AA:BB:CC:DD:EE:FF --config SAVE_ON_SEND=2 firmware/dist/beacon.js',
    );
  });

  it('refuses to run without a port', async () => {
    const script = fileURLToPath(new URL('../scripts/flash.js', import.meta.url));
    await assert.rejects(promisify(execFile)(process.execPath, [script]), { code: 2 });
  });
});
