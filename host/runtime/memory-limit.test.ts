import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileWat } from '../../test/helpers/wat.ts';
import { isActorLoadError } from '../errors.ts';
import { appendCustomSection, customSection, listCustomSections } from '../claims/wasm-sections.ts';
import { limitModuleMemory, pagesForMiB } from './memory-limit.ts';

/** A module whose exported function grows its memory by `n` pages and returns what memory.grow returned. */
const grower = async (limits: string) =>
  appendCustomSection(await compileWat(`(module (memory (export "memory") ${limits}) (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))`), 'note', 'kept');

function instance(bytes: Uint8Array) {
  const exports = new WebAssembly.Instance(new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>)).exports as { grow(n: number): number; memory: WebAssembly.Memory };
  return exports;
}

test('a memory without a maximum gets the limit: memory.grow past it returns -1, the host side throws', async () => {
  const bytes = await grower('1');
  const limited = limitModuleMemory(bytes, 16);
  const g = instance(limited);
  assert.equal(g.grow(15), 1, 'up to the limit');
  assert.equal(g.grow(1), -1, 'one page past it: refused as wasm defines it');
  assert.equal(g.memory.buffer.byteLength, 16 * 65536);
  assert.throws(() => g.memory.grow(1), RangeError);
  // Unlimited, the same module grows.
  assert.equal(instance(bytes).grow(100), 1);
});

test('a declared maximum is lowered, never raised; bytes outside the memory section are unchanged', async () => {
  const bytes = await grower('1 1000');
  const g = instance(limitModuleMemory(bytes, 8));
  assert.equal(g.grow(7), 1);
  assert.equal(g.grow(1), -1);
  const small = await grower('1 4');
  assert.equal(limitModuleMemory(small, 8), small, 'already within the limit: the same bytes');
  const out = limitModuleMemory(bytes, 8);
  assert.deepEqual(listCustomSections(out).map((s) => s.name), ['note']);
  assert.equal(new TextDecoder().decode(customSection(out, 'note')), 'kept');
  // A module without memory is left alone.
  const none = await compileWat('(module (func (export "f")))');
  assert.equal(limitModuleMemory(none, 8), none);
});

test('a memory that starts past the limit is refused with the reason and how to raise it', async () => {
  const big = await grower('2048');
  assert.throws(() => limitModuleMemory(big, pagesForMiB(64)), (e) => isActorLoadError(e) && /memory starts at 128 MiB, more than the actor's limit of 64 MiB \(raise maxMemoryMiB/.test(e.message));
  assert.equal(pagesForMiB(64), 1024);
});
