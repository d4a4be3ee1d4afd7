/**
 * Per-instance linear-memory limits, enforced by the engine itself: the memory section of a core
 * module is rewritten so that every memory it defines has a maximum no higher than the limit. A
 * `memory.grow` past it then fails as WebAssembly defines it (it returns -1; the guest usually
 * traps), and growth from the host side (`Memory.grow`) throws; nothing else in the host is
 * affected. Only the memory section changes; every other byte is kept as it is.
 */
import { ActorLoadError } from '../errors.ts';
import { encodeU32, parseWasmLayout, readU32 } from '../claims/wasm-sections.ts';

/** A WebAssembly page: 64 KiB. */
export const WASM_PAGE_BYTES = 64 * 1024;
const MEMORY_SECTION = 5;
const HAS_MAX = 0x01;
const MEMORY64 = 0x04;

/** What a limit in MiB allows, in pages. */
export function pagesForMiB(mib: number): number {
  return Math.floor((mib * 1024 * 1024) / WASM_PAGE_BYTES);
}

/**
 * `bytes` (a core module) with the maximum of every memory it defines lowered to `maxPages`
 * (set where none was declared); `bytes` itself when nothing needed to change. Throws
 * ActorLoadError when a memory's initial size is already past the limit, or is 64-bit.
 */
export function limitModuleMemory(bytes: Uint8Array, maxPages: number): Uint8Array {
  const section = parseWasmLayout(bytes).sections.find((s) => s.id === MEMORY_SECTION);
  if (!section) return bytes;
  const out: number[] = [];
  const count = readU32(bytes, section.payloadStart, 'memory count');
  out.push(...encodeU32(count.value));
  let at = count.next;
  let changed = false;
  for (let i = 0; i < count.value; i++) {
    const flags = bytes[at]!;
    if (flags & MEMORY64) throw new ActorLoadError('the module defines a 64-bit memory, which this host does not run');
    if (flags > 0x03) throw new ActorLoadError(`the module's memory ${i} has unknown limit flags 0x${flags.toString(16)}`);
    const min = readU32(bytes, at + 1, `memory ${i} minimum`);
    at = min.next;
    let max: number | undefined;
    if (flags & HAS_MAX) {
      const m = readU32(bytes, at, `memory ${i} maximum`);
      max = m.value;
      at = m.next;
    }
    if (min.value > maxPages) {
      throw new ActorLoadError(
        `the module's memory starts at ${mib(min.value)} MiB, more than the actor's limit of ${mib(maxPages)} MiB (raise maxMemoryMiB to run it)`,
      );
    }
    const limited = max === undefined ? maxPages : Math.min(max, maxPages);
    if (limited !== max) changed = true;
    out.push(flags | HAS_MAX, ...encodeU32(min.value), ...encodeU32(limited));
  }
  if (at !== section.end) throw new ActorLoadError('the module\'s memory section has bytes past its last memory');
  if (!changed) return bytes;
  const size = encodeU32(out.length);
  const result = new Uint8Array(bytes.length - (section.end - section.start) + 1 + size.length + out.length);
  result.set(bytes.subarray(0, section.start), 0);
  let w = section.start;
  result[w++] = MEMORY_SECTION;
  result.set(size, w);
  w += size.length;
  result.set(out, w);
  w += out.length;
  result.set(bytes.subarray(section.end), w);
  return result;
}

function mib(pages: number): string {
  const v = (pages * WASM_PAGE_BYTES) / (1024 * 1024);
  return Number.isInteger(v) ? String(v) : v.toFixed(2);
}
