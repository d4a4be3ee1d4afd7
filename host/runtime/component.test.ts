import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { isActorLoadError, isOptionsError } from '../errors.ts';
import { createComponentRuntime, isComponentBinary } from './component.ts';
import { fastAsciiLowering, optimizeGlue, removeCallStatements, removeSyncTaskRecords } from './component-glue.ts';

const core = new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);
const component = new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00]);

describe('component runtime', () => {
  it('recognises components by their preamble, never core modules', () => {
    assert.equal(isComponentBinary(component), true);
    assert.equal(isComponentBinary(core), false);
    assert.equal(isComponentBinary(component.subarray(0, 6)), false);
    const rt = createComponentRuntime({ cacheDir: mkdtempSync(join(tmpdir(), 'wasmlet-crt-')) });
    assert.equal(rt.detect(component, undefined), true);
    assert.equal(rt.detect(core, new WebAssembly.Module(core)), false);
  });

  it('refuses bytes that are not a component, and a component jco cannot read, naming why', async () => {
    const rt = createComponentRuntime({ cacheDir: mkdtempSync(join(tmpdir(), 'wasmlet-crt-')) });
    await assert.rejects(rt.prepare(core, undefined), (e) => isActorLoadError(e) && /not a WebAssembly component/.test(e.message));
    const truncated = new Uint8Array([...component, 0x01, 0x05, 0x00]);
    await assert.rejects(rt.prepare(truncated, undefined), (e) => isActorLoadError(e) && /past the end of the binary/.test(e.message));
    const garbage = new Uint8Array([...component, 0x01, 0x01, 0x00]);
    await assert.rejects(rt.prepare(garbage, undefined), (e) => isActorLoadError(e) && /cannot transpile the component with jco/.test(e.message));
    assert.deepEqual(rt.stats(), { transpiled: 0, compiled: 0 });
  });

  it('validates its options', () => {
    assert.throws(() => createComponentRuntime({ cacheDir: '' }), (e) => isOptionsError(e) && /cacheDir/.test(e.message));
    assert.throws(() => createComponentRuntime({ cacheDirectory: 'x' } as never), (e) => isOptionsError(e));
  });

  it('compiles out the glue debug-log environment lookup and leaves other text alone', () => {
    const glue = `a();\n  const _debugLog = (...args) => {\n    if (!globalThis?.process?.env?.JCO_DEBUG) { return; }\n    console.debug(...args);\n  };\nb();`;
    assert.equal(optimizeGlue(glue), 'a();\n  const _debugLog = () => {};\nb();');
    assert.equal(optimizeGlue('nothing to do'), 'nothing to do');
  });

  it('removes debug-log statements, arguments and all, but never a call whose value is used', () => {
    const glue = [
      'function f(x) {',
      "  _debugLog('[f] enter (a paren: \\')', { x, s: \"}\" });",
      '  const y = x + 1;',
      "  _debugLog(`[f] ${x}`, { nested: { y: [1, (2)] } });",
      '  return y;',
      '}',
    ].join('\n');
    assert.equal(removeCallStatements(glue, '_debugLog'), 'function f(x) {\n  \n  const y = x + 1;\n  \n  return y;\n}');
    // All or nothing: one call site used as a value keeps every call site.
    const used = "_debugLog('a');\nconst v = _debugLog('b');\n";
    assert.equal(removeCallStatements(used, '_debugLog'), used);
    const unbalanced = "_debugLog('a', {);\n";
    assert.equal(removeCallStatements(unbalanced, '_debugLog'), unbalanced);
  });

  it('drops synchronous task records only when no async lowering could read them', () => {
    const defs = 'function startCurrentTask(componentIdx, isAsync, entryFnName) { return 1; }\nfunction endCurrentTask(componentIdx, taskId) {}\n';
    const call = "function t() {\n  const _interface_call_currentTaskID = startCurrentTask(0, false, 'now');\n  const ret = now();\n  endCurrentTask(0);\n  return ret;\n}\n";
    const out = removeSyncTaskRecords(defs + call);
    assert.equal(out, defs + 'function t() {\n  \n  const ret = now();\n  \n  return ret;\n}\n');
    // Async lowering in use: the records are read, so nothing changes.
    const asyncGlue = defs + 'function prepareCall(memoryIdx) {}\n' + call + 'prepareCall(0);\n';
    assert.equal(removeSyncTaskRecords(asyncGlue), asyncGlue);
    // A task id read later, or a start without its matching end: nothing changes.
    const read = defs + "function u() {\n  const _wasm_call_currentTaskID = startCurrentTask(0, false, 'x');\n  endCurrentTask(0, _wasm_call_currentTaskID);\n}\n";
    assert.equal(removeSyncTaskRecords(read), read);
    const unmatched = defs + call + "function v() { startCurrentTask(0, true, 'y'); }\n";
    assert.equal(removeSyncTaskRecords(unmatched), unmatched);
  });

  it('lowers short ASCII strings straight into guest memory, and every other string as jco did', () => {
    // jco 1.15's string lowering, verbatim.
    const jco = [
      '  const utf8Encoder = new TextEncoder();',
      '  let utf8EncodedLen = 0;',
      '  function utf8Encode(s, realloc, memory) {',
      "    if (typeof s !== 'string') throw new TypeError('expected a string');",
      '    if (s.length === 0) {',
      '      utf8EncodedLen = 0;',
      '      return 1;',
      '    }',
      '    let buf = utf8Encoder.encode(s);',
      '    let ptr = realloc(0, 0, 1, buf.length);',
      '    new Uint8Array(memory.buffer).set(buf, ptr);',
      '    utf8EncodedLen = buf.length;',
      '    return ptr;',
      '  }',
    ].join('\n');
    const fast = fastAsciiLowering(jco);
    assert.notEqual(fast, jco);
    assert.equal(fastAsciiLowering('function utf8Encode(s) { return other(s); }'), 'function utf8Encode(s) { return other(s); }');
    const load = (src: string) => new Function(`${src}\nreturn (s, realloc, memory) => [utf8Encode(s, realloc, memory), utf8EncodedLen];`)() as (s: string, r: (a: number, b: number, c: number, n: number) => number, m: { buffer: ArrayBuffer }) => [number, number];
    for (const s of ['GET', '/a/b?c=d', 'x'.repeat(64), 'x'.repeat(65), 'é', 'a😀', 'ünï'.repeat(30)]) {
      const results = [load(jco), load(fast)].map((encode) => {
        // A memory that grows (a new buffer) on each allocation, as guest memory may.
        const memory = { buffer: new ArrayBuffer(16) };
        const realloc = (_a: number, _b: number, _c: number, n: number) => {
          memory.buffer = new ArrayBuffer(memory.buffer.byteLength + n + 8);
          return 8;
        };
        const [ptr, len] = encode(s, realloc, memory);
        return Buffer.from(new Uint8Array(memory.buffer, ptr, len)).toString('utf8');
      });
      assert.deepEqual(results, [s, s], `lowering ${JSON.stringify(s.slice(0, 10))}…`);
    }
  });
});
