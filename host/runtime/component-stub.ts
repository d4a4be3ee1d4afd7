/**
 * Stand-ins for a component's large core modules while jco generates its glue. The glue depends
 * only on the component's structure and on each core module's imports and exports; jco copies
 * the core modules themselves out unchanged. Its bindings generator is slow on big modules
 * (seconds on StarlingMonkey's 12 MB, spent walking code it does not need), so it is given
 * modules with the same types, imports, exports, tables and globals, but every function body
 * `unreachable` and no data or custom sections; the real modules replace them in the output.
 */
import { createHash } from 'node:crypto';
import { encodeU32, parseWasmLayout, readU32 } from '../claims/wasm-sections.ts';

/** Core modules below this size are passed through (stubbing them saves nothing). */
export const STUB_MIN_BYTES = 64 * 1024;

const SECTION_CUSTOM = 0;
const SECTION_CORE_MODULE = 1; // in a component
const SECTION_CODE = 10; // in a core module
const SECTION_DATA = 11;
const SECTION_DATA_COUNT = 12;
/** A function body: no locals, `unreachable`, `end` (3 bytes, after its size byte). */
const UNREACHABLE_BODY = [0x03, 0x00, 0x00, 0x0b];

function section(id: number, payload: Uint8Array): Uint8Array {
  return Buffer.concat([Uint8Array.from([id, ...encodeU32(payload.length)]), payload]);
}

/** The core module with every function body `unreachable` and its data and custom sections dropped. */
export function stubCoreModule(module: Uint8Array): Uint8Array {
  const parts: Uint8Array[] = [module.subarray(0, 8)];
  for (const s of parseWasmLayout(module).sections) {
    // Without bodies nothing reads the data (so its count goes too); names are not needed.
    if (s.id === SECTION_DATA || s.id === SECTION_DATA_COUNT || s.id === SECTION_CUSTOM) continue;
    if (s.id !== SECTION_CODE) {
      parts.push(module.subarray(s.start, s.end));
      continue;
    }
    const count = readU32(module, s.payloadStart, 'count').value;
    const bodies = new Uint8Array(count * UNREACHABLE_BODY.length);
    for (let i = 0; i < count; i++) bodies.set(UNREACHABLE_BODY, i * UNREACHABLE_BODY.length);
    parts.push(section(SECTION_CODE, Buffer.concat([encodeU32(count), bodies])));
  }
  return Buffer.concat(parts);
}

export interface StubbedComponent {
  /** The component with its large top-level core modules stubbed. */
  component: Uint8Array;
  /** sha256 (hex) of each stub → the core module it stands for. */
  originals: Map<string, Uint8Array>;
}

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** Stubs the component's top-level core modules of at least `minBytes`. */
export function stubComponent(component: Uint8Array, minBytes = STUB_MIN_BYTES): StubbedComponent {
  const parts: Uint8Array[] = [component.subarray(0, 8)];
  const originals = new Map<string, Uint8Array>();
  for (const s of parseWasmLayout(component).sections) {
    if (s.id !== SECTION_CORE_MODULE || s.end - s.payloadStart < minBytes) {
      parts.push(component.subarray(s.start, s.end));
      continue;
    }
    const module = component.subarray(s.payloadStart, s.end);
    const stub = stubCoreModule(module);
    const key = sha256(stub);
    if (originals.has(key)) {
      // Two modules with the same shape would come back as one file name each but be told apart by nothing.
      parts.push(component.subarray(s.start, s.end));
      continue;
    }
    originals.set(key, module);
    parts.push(section(SECTION_CORE_MODULE, stub));
  }
  return { component: originals.size ? Buffer.concat(parts) : component, originals };
}

/**
 * Puts the real core modules back in jco's output files. Returns undefined when some stub did
 * not come back verbatim (jco rewrote a module): then the output cannot be trusted.
 */
export function restoreCoreModules(files: Record<string, Uint8Array>, originals: Map<string, Uint8Array>): Record<string, Uint8Array> | undefined {
  const out = { ...files };
  let restored = 0;
  for (const [name, bytes] of Object.entries(files)) {
    if (!name.endsWith('.wasm')) continue;
    const original = originals.get(sha256(bytes));
    if (original) {
      out[name] = original;
      restored++;
    }
  }
  return restored === originals.size ? out : undefined;
}
