/**
 * A walker over the top-level sections of a WebAssembly binary: a core module (version 1) or a
 * component (Component Model preamble, layer 1). Only section framing is read (id, LEB128 size,
 * and the name of custom sections), which is all that signing needs: the claims live in a custom
 * section (id 0 in both formats) at the top level. Payloads of other sections are never parsed,
 * and editing functions keep every byte outside the removed/added sections exactly as it was.
 */
import { WasmletError } from '../errors.ts';

/** Error code of malformed WebAssembly binaries (thrown as a WasmletError). */
export const WASM_MALFORMED = 'WASM_MALFORMED';

export type WasmBinaryKind = 'module' | 'component';

export interface WasmSection {
  /** Section id (0 = custom in modules and components). */
  id: number;
  /** Offset of the section's id byte. */
  start: number;
  /** Offset just past the section's last byte. */
  end: number;
  /** Offset of the section's payload (after id and size). */
  payloadStart: number;
}

export interface CustomSectionInfo extends WasmSection {
  name: string;
  /** Offset of the custom payload (after the name). */
  dataStart: number;
}

export interface WasmLayout {
  kind: WasmBinaryKind;
  /** All top-level sections in file order; custom ones carry their name. */
  sections: Array<WasmSection | CustomSectionInfo>;
}

const MAGIC = [0x00, 0x61, 0x73, 0x6d];
const PREAMBLE_LENGTH = 8;
const utf8 = new TextDecoder('utf-8', { fatal: true });
const utf8Encoder = new TextEncoder();

function malformed(message: string, cause?: unknown): WasmletError {
  return new WasmletError(WASM_MALFORMED, `malformed WebAssembly binary: ${message}`, cause === undefined ? undefined : { cause });
}

/** Reads an unsigned LEB128 u32 at `offset`; returns the value and the offset after it. */
export function readU32(bytes: Uint8Array, offset: number, what: string): { value: number; next: number } {
  let result = 0;
  let shift = 0;
  for (let i = 0; i < 5; i++) {
    const at = offset + i;
    if (at >= bytes.length) throw malformed(`truncated LEB128 ${what} at offset ${offset}`);
    const byte = bytes[at]!;
    // The fifth byte may only carry the top 4 bits of a u32.
    if (i === 4 && (byte & 0xf0) !== 0) throw malformed(`LEB128 ${what} at offset ${offset} does not fit in 32 bits`);
    result += (byte & 0x7f) * 2 ** shift;
    shift += 7;
    if ((byte & 0x80) === 0) return { value: result, next: at + 1 };
  }
  throw malformed(`LEB128 ${what} at offset ${offset} is longer than 5 bytes`);
}

/** Encodes an unsigned LEB128 u32. */
export function encodeU32(value: number): Uint8Array {
  const out: number[] = [];
  let v = value >>> 0;
  do {
    let byte = v & 0x7f;
    v >>>= 7;
    if (v !== 0) byte |= 0x80;
    out.push(byte);
  } while (v !== 0);
  return Uint8Array.from(out);
}

function readPreamble(bytes: Uint8Array): WasmBinaryKind {
  if (!(bytes instanceof Uint8Array)) throw malformed('expected bytes (Uint8Array)');
  if (bytes.length < PREAMBLE_LENGTH) throw malformed(`only ${bytes.length} bytes, shorter than the 8-byte preamble`);
  for (let i = 0; i < MAGIC.length; i++) {
    if (bytes[i] !== MAGIC[i]) throw malformed('missing the \\0asm magic number (not a WebAssembly file)');
  }
  // Bytes 4..5: version (LE u16); 6..7: layer. Layer 0 version 1 = core module; layer 1 = component.
  const version = bytes[4]! | (bytes[5]! << 8);
  const layer = bytes[6]! | (bytes[7]! << 8);
  if (layer === 0 && version === 1) return 'module';
  if (layer === 1) return 'component';
  throw malformed(`unsupported version ${version} / layer ${layer} (expected a core module, version 1, or a component, layer 1)`);
}

/** Parses the preamble and the framing of every top-level section. Throws WasmletError(WASM_MALFORMED). */
export function parseWasmLayout(bytes: Uint8Array): WasmLayout {
  const kind = readPreamble(bytes);
  const sections: Array<WasmSection | CustomSectionInfo> = [];
  let offset = PREAMBLE_LENGTH;
  while (offset < bytes.length) {
    const start = offset;
    const id = bytes[offset]!;
    const size = readU32(bytes, offset + 1, `size of section ${id}`);
    const payloadStart = size.next;
    const end = payloadStart + size.value;
    if (end > bytes.length) {
      throw malformed(`section ${id} at offset ${start} claims ${size.value} bytes, past the end of the binary (${bytes.length - payloadStart} left)`);
    }
    if (id === 0) {
      const nameLength = readU32(bytes, payloadStart, `custom section name length`);
      const dataStart = nameLength.next + nameLength.value;
      if (nameLength.next > end || dataStart > end) {
        throw malformed(`custom section at offset ${start}: its name runs past the section's end`);
      }
      let name: string;
      try {
        name = utf8.decode(bytes.subarray(nameLength.next, dataStart));
      } catch (err) {
        throw malformed(`custom section at offset ${start}: its name is not valid UTF-8`, err);
      }
      sections.push({ id, start, end, payloadStart, name, dataStart });
    } else {
      sections.push({ id, start, end, payloadStart });
    }
    offset = end;
  }
  return { kind, sections };
}

function isCustom(section: WasmSection | CustomSectionInfo): section is CustomSectionInfo {
  return section.id === 0 && 'name' in section;
}

/** The custom sections of a module or component, in file order. */
export function listCustomSections(bytes: Uint8Array): CustomSectionInfo[] {
  return parseWasmLayout(bytes).sections.filter(isCustom);
}

/** A copy of the payload of the first custom section called `name`, or undefined. */
export function customSection(bytes: Uint8Array, name: string): Uint8Array<ArrayBuffer> | undefined {
  const found = listCustomSections(bytes).find((s) => s.name === name);
  return found ? bytes.slice(found.dataStart, found.end) : undefined;
}

/**
 * The byte ranges `[start, end)` that remain once every custom section named in `names` is removed.
 * Used both to build stripped bytes and to hash them without copying.
 */
export function keptRanges(bytes: Uint8Array, names: Iterable<string>): Array<[number, number]> {
  const drop = new Set(names);
  const ranges: Array<[number, number]> = [];
  let from = 0;
  for (const section of parseWasmLayout(bytes).sections) {
    if (isCustom(section) && drop.has(section.name)) {
      if (section.start > from) ranges.push([from, section.start]);
      from = section.end;
    }
  }
  if (bytes.length > from) ranges.push([from, bytes.length]);
  return ranges;
}

/** New bytes without any custom section named in `names`; all other bytes unchanged. */
export function stripCustomSections(bytes: Uint8Array, names: Iterable<string>): Uint8Array<ArrayBuffer> {
  const ranges = keptRanges(bytes, names);
  const out = new Uint8Array(ranges.reduce((n, [a, b]) => n + (b - a), 0));
  let at = 0;
  for (const [a, b] of ranges) {
    out.set(bytes.subarray(a, b), at);
    at += b - a;
  }
  return out;
}

/** New bytes with a custom section `name` holding `payload` appended at the end. */
export function appendCustomSection(bytes: Uint8Array, name: string, payload: Uint8Array | string): Uint8Array<ArrayBuffer> {
  parseWasmLayout(bytes); // refuse to extend something that is not a well-formed binary
  const nameBytes = utf8Encoder.encode(name);
  const data = typeof payload === 'string' ? utf8Encoder.encode(payload) : payload;
  const nameLength = encodeU32(nameBytes.length);
  const contentLength = nameLength.length + nameBytes.length + data.length;
  if (contentLength > 0xffffffff) throw new RangeError('custom section larger than 4 GiB');
  const size = encodeU32(contentLength);
  const out = new Uint8Array(bytes.length + 1 + size.length + contentLength);
  let at = 0;
  out.set(bytes, at);
  at += bytes.length;
  out[at++] = 0;
  out.set(size, at);
  at += size.length;
  out.set(nameLength, at);
  at += nameLength.length;
  out.set(nameBytes, at);
  at += nameBytes.length;
  out.set(data, at);
  return out;
}
