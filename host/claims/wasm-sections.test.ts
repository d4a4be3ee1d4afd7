import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import {
  WASM_MALFORMED,
  appendCustomSection,
  customSection,
  listCustomSections,
  parseWasmLayout,
  stripCustomSections,
} from './wasm-sections.ts';

const repoRoot = new URL('../../', import.meta.url);
const fixtures = new URL('../shared/fixtures/', repoRoot);
const MODULE_PREAMBLE = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
const COMPONENT_PREAMBLE = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];
const enc = new TextEncoder();

function custom(name: string, payload: string): number[] {
  const n = [...enc.encode(name)];
  const p = [...enc.encode(payload)];
  return [0x00, 1 + n.length + p.length, n.length, ...n, ...p];
}
const TYPE_SECTION = [0x01, 0x04, 0x01, 0x60, 0x00, 0x00]; // (type (func))

/** `(module (type (func)))` with custom sections a, jwt, b, in that order. */
const pieces = [MODULE_PREAMBLE, TYPE_SECTION, custom('a', 'AAA'), custom('jwt', 'token'), custom('b', 'BBB')];
const sample = Uint8Array.from(pieces.flat());

function assertMalformed(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.equal((err as { code?: string }).code, WASM_MALFORMED);
    assert.match((err as Error).message, pattern);
    return true;
  });
}

test('walks the sections of a hand-built module and finds custom ones by name', () => {
  assert.ok(WebAssembly.validate(sample), 'the sample is a valid module');
  const layout = parseWasmLayout(sample);
  assert.equal(layout.kind, 'module');
  assert.deepEqual(layout.sections.map((s) => s.id), [1, 0, 0, 0]);
  const customs = listCustomSections(sample);
  assert.deepEqual(customs.map((s) => s.name), ['a', 'jwt', 'b']);
  const jwt = customs[1]!;
  assert.equal(jwt.start, MODULE_PREAMBLE.length + TYPE_SECTION.length + custom('a', 'AAA').length);
  assert.equal(new TextDecoder().decode(sample.subarray(jwt.dataStart, jwt.end)), 'token');
  assert.equal(new TextDecoder().decode(customSection(sample, 'b')), 'BBB');
  assert.equal(customSection(sample, 'missing'), undefined);
});

test('customSection returns a copy: changing it leaves the binary alone', () => {
  const bytes = sample.slice();
  const payload = customSection(bytes, 'jwt')!;
  payload.fill(0);
  assert.deepEqual(bytes, sample);
});

test('stripCustomSections drops only the named sections and keeps every other byte', () => {
  const stripped = stripCustomSections(sample, ['jwt']);
  const expected = Uint8Array.from([MODULE_PREAMBLE, TYPE_SECTION, custom('a', 'AAA'), custom('b', 'BBB')].flat());
  assert.deepEqual(stripped, expected);
  assert.ok(WebAssembly.validate(stripped));
  assert.deepEqual(stripCustomSections(sample, ['a', 'b', 'jwt']), Uint8Array.from([MODULE_PREAMBLE, TYPE_SECTION].flat()));
  assert.deepEqual(stripCustomSections(sample, ['nothing-here']), sample);
});

test('appendCustomSection adds a readable section after the others, and strip undoes it', () => {
  const payload = 'x'.repeat(300); // a size that needs a 2-byte LEB128
  const appended = appendCustomSection(sample, 'note', payload);
  assert.deepEqual(appended.subarray(0, sample.length), sample);
  assert.ok(WebAssembly.validate(appended));
  assert.equal(new TextDecoder().decode(customSection(appended, 'note')), payload);
  assert.deepEqual(stripCustomSections(appended, ['note']), sample);
});

test('accepts a size written as a padded 5-byte LEB128', () => {
  const padded = Uint8Array.from([...MODULE_PREAMBLE, 0x00, 0x84, 0x80, 0x80, 0x80, 0x00, 0x03, 0x6a, 0x77, 0x74]);
  assert.ok(WebAssembly.validate(padded));
  assert.deepEqual(listCustomSections(padded).map((s) => s.name), ['jwt']);
  assert.deepEqual(stripCustomSections(padded, ['jwt']), Uint8Array.from(MODULE_PREAMBLE));
});

test('walks a component: the empty preamble, then a section appended at the top level', () => {
  const empty = Uint8Array.from(COMPONENT_PREAMBLE);
  assert.equal(parseWasmLayout(empty).kind, 'component');
  assert.deepEqual(listCustomSections(empty), []);
  const withSection = appendCustomSection(empty, 'jwt', 'abc');
  assert.equal(new TextDecoder().decode(customSection(withSection, 'jwt')), 'abc');
  assert.deepEqual(stripCustomSections(withSection, ['jwt']), empty);
});

test('a real waSCC actor: the jwt section is last and stripping it leaves a module that compiles', () => {
  const echo = new Uint8Array(readFileSync(new URL('wascc/echo.wasm', fixtures)));
  const customs = listCustomSections(echo);
  const jwt = customs.find((s) => s.name === 'jwt');
  assert.ok(jwt);
  assert.equal(jwt.end, echo.length);
  assert.ok(customs.some((s) => s.name === 'producers'));
  assert.equal(new TextDecoder().decode(customSection(echo, 'jwt')!.subarray(0, 3)), 'eyJ');
  const stripped = stripCustomSections(echo, ['jwt']);
  assert.deepEqual(stripped, echo.subarray(0, jwt.start));
  assert.ok(new WebAssembly.Module(stripped));
});

test('malformed binaries get a clear error', () => {
  assertMalformed(() => parseWasmLayout(Uint8Array.from([0x00, 0x61, 0x73])), /shorter than the 8-byte preamble/);
  assertMalformed(() => parseWasmLayout(enc.encode('#!/bin/sh echo')), /magic number/);
  assertMalformed(() => parseWasmLayout(Uint8Array.from([0x00, 0x61, 0x73, 0x6d, 0x02, 0x00, 0x00, 0x00])), /unsupported version 2/);
  assertMalformed(() => parseWasmLayout(Uint8Array.from([...MODULE_PREAMBLE, 0x01])), /truncated LEB128 size of section 1/);
  assertMalformed(() => parseWasmLayout(Uint8Array.from([...MODULE_PREAMBLE, 0x01, 0x85])), /truncated LEB128/);
  assertMalformed(
    () => parseWasmLayout(Uint8Array.from([...MODULE_PREAMBLE, 0x01, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00])),
    /(does not fit in 32 bits|longer than 5 bytes)/,
  );
  assertMalformed(() => parseWasmLayout(Uint8Array.from([...MODULE_PREAMBLE, 0x01, 0x0a, 0x01])), /past the end of the binary/);
  assertMalformed(() => parseWasmLayout(Uint8Array.from([...MODULE_PREAMBLE, 0x00, 0x02, 0x05, 0x61])), /name runs past the section's end/);
  assertMalformed(() => parseWasmLayout(Uint8Array.from([...MODULE_PREAMBLE, 0x00, 0x02, 0x01, 0xff])), /not valid UTF-8/);
  // The whole sample cut short inside its last section.
  assertMalformed(() => listCustomSections(sample.subarray(0, sample.length - 2)), /past the end/);
});

test('editing functions refuse malformed input and leave it unchanged', () => {
  const bad = Uint8Array.from([...MODULE_PREAMBLE, 0x00, 0x09, 0x03, 0x6a]);
  const before = bad.slice();
  assertMalformed(() => appendCustomSection(bad, 'jwt', 'x'), /past the end/);
  assertMalformed(() => stripCustomSections(bad, ['jwt']), /past the end/);
  assertMalformed(() => customSection(bad, 'jwt'), /past the end/);
  assert.deepEqual(bad, before);
});
