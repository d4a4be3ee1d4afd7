import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileWat } from '../../test/helpers/wat.ts';
import { parseWasmLayout } from '../claims/wasm-sections.ts';
import { restoreCoreModules, stubComponent, stubCoreModule } from './component-stub.ts';

const WAT = `(module
  (import "env" "log" (func $log (param i32)))
  (import "env" "mem" (memory 1))
  (table 2 funcref)
  (global $g (mut i32) (i32.const 7))
  (elem (i32.const 0) $add $store)
  (data (i32.const 16) "active data")
  (data $passive "passive data")
  (func $add (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
  (func $store (export "store") (param i32)
    (memory.init $passive (local.get 0) (i32.const 0) (i32.const 4))
    (call $log (global.get $g)))
  (export "g" (global $g))
  (export "t" (table 0)))`;

const sectionIds = (bytes: Uint8Array) => parseWasmLayout(bytes).sections.map((s) => s.id);

/** A component container: the preamble, then the given sections (only their framing matters here). */
function component(...sections: Array<[number, Uint8Array]>): Uint8Array {
  const parts: number[] = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];
  for (const [id, payload] of sections) {
    const size: number[] = [];
    let v = payload.length;
    do {
      size.push((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
      v >>>= 7;
    } while (v);
    parts.push(id, ...size, ...payload);
  }
  return Uint8Array.from(parts);
}

describe('core module stubs for transpiling', () => {
  it('keeps a module\'s shape (types, imports, exports, tables, globals) and drops its code and data', async () => {
    const module = new Uint8Array(await compileWat(WAT));
    const stub = new Uint8Array(stubCoreModule(module));
    assert.ok(WebAssembly.validate(stub), 'the stub is a valid module');
    const [real, fake] = [new WebAssembly.Module(module), new WebAssembly.Module(stub)];
    assert.deepEqual(WebAssembly.Module.imports(fake), WebAssembly.Module.imports(real));
    assert.deepEqual(WebAssembly.Module.exports(fake), WebAssembly.Module.exports(real));
    assert.ok(sectionIds(module).includes(11) && sectionIds(module).includes(12));
    assert.ok(!sectionIds(stub).includes(11) && !sectionIds(stub).includes(12), 'no data, no data count');
    // Every body is `unreachable`.
    const memory = new WebAssembly.Memory({ initial: 1 });
    const instance = new WebAssembly.Instance(fake, { env: { log: () => {}, mem: memory } });
    assert.throws(() => (instance.exports.add as (a: number, b: number) => number)(1, 2), /unreachable/);
    assert.equal(Buffer.from(memory.buffer, 16, 11).toString(), '\0'.repeat(11), 'no data was written');
  });

  it('stubs only the large core modules of a component and puts the originals back in jco\'s output', async () => {
    const big = await compileWat(WAT.replace('"active data"', `"${'x'.repeat(300)}"`));
    const small = await compileWat('(module (func (export "f")))');
    const other = Uint8Array.from([1, 2, 3]);
    const bytes = component([7, other], [1, big], [1, small], [0, Uint8Array.from([1, 0x61])]);
    const { component: stubbed, originals } = stubComponent(bytes, 200);
    assert.equal(originals.size, 1);
    const layout = parseWasmLayout(stubbed);
    assert.deepEqual(layout.sections.map((s) => s.id), [7, 1, 1, 0]);
    const modules = layout.sections.filter((s) => s.id === 1).map((s) => stubbed.subarray(s.payloadStart, s.end));
    assert.deepEqual(Buffer.from(modules[0]!), Buffer.from(stubCoreModule(big)));
    assert.deepEqual(Buffer.from(modules[1]!), Buffer.from(small), 'small modules pass through');
    // As jco writes them: the stub verbatim under its file name.
    const files = { 'c.core.wasm': modules[0]!, 'c.core2.wasm': modules[1]!, 'c.js': Buffer.from('glue') };
    const restored = restoreCoreModules(files, originals)!;
    assert.deepEqual(Buffer.from(restored['c.core.wasm']!), Buffer.from(big));
    assert.deepEqual(Buffer.from(restored['c.core2.wasm']!), Buffer.from(small));
    assert.equal(restored['c.js'], files['c.js']);
    // A stub that did not come back verbatim means the output cannot be used.
    const changed = Uint8Array.from(modules[0]!);
    changed[changed.length - 1]! ^= 1;
    assert.equal(restoreCoreModules({ ...files, 'c.core.wasm': changed }, originals), undefined);
  });

  it('leaves a component alone when nothing is worth stubbing, and never stubs two modules into one', async () => {
    const small = component([1, await compileWat('(module)')]);
    assert.equal(stubComponent(small).component, small);
    // Same shape, different code: the stubs would be identical, so only the first is stubbed.
    const a = await compileWat('(module (func (export "f") (result i32) (i32.const 1)))');
    const b = await compileWat('(module (func (export "f") (result i32) (i32.const 2)))');
    const { component: stubbed, originals } = stubComponent(component([1, a], [1, b]), 0);
    assert.equal(originals.size, 1);
    const modules = parseWasmLayout(stubbed).sections.map((s) => stubbed.subarray(s.payloadStart, s.end));
    assert.deepEqual(Buffer.from(modules[1]!), Buffer.from(b));
  });
});
