/**
 * Reply frames of the lattice (see envelope.ts for invocation batches): one status byte then the
 * payload, and reply batches that carry a turn's replies to one caller in one NATS message.
 */
import { decode, encode } from '../codec.ts';
import { WasmletError } from '../errors.ts';
import { HOST_KEY_INVALID, invalid, isPlainObject } from './envelope.ts';

// ---------------------------------------------------------------------------------- replies

/** Status byte of a reply frame: a result follows. */
export const REPLY_OK = 0;
/** Status byte: msgpack `{code, message}` follows. */
export const REPLY_ERROR = 1;
/** Status byte: msgpack `{code: "DECLINED", message}` follows; the receiver did not run the item (it stops serving the target, or the batch had no MAC for it) and the caller may send it again. */
export const REPLY_DECLINED = 2;
/** Code of a declined reply: the item was not run, send it again. */
export const DECLINED = 'DECLINED';

/** The payload of an error or declined reply (after its status byte). */
export function errorPayload(code: string, message: string): Uint8Array {
  return encode({ code, message });
}

export type Reply = { ok: true; result: Uint8Array } | { ok: false; code: string; message: string; declined?: true };

/** Decodes a reply frame; throws WasmletError(ENVELOPE_INVALID) when garbled. */
export function decodeReply(frame: Uint8Array): Reply {
  if (frame.byteLength === 0) throw invalid('empty reply');
  if (frame[0] === REPLY_OK) return { ok: true, result: frame.subarray(1) };
  if (frame[0] !== REPLY_ERROR && frame[0] !== REPLY_DECLINED) throw invalid(`unknown reply status ${frame[0]}`);
  let value: unknown;
  try {
    value = decode(frame.subarray(1));
  } catch (err) {
    throw invalid(`error reply is not msgpack (${(err as Error).message})`, err);
  }
  if (!isPlainObject(value) || typeof value.code !== 'string' || typeof value.message !== 'string') {
    throw invalid('error reply must be a map {code, message}');
  }
  return frame[0] === REPLY_DECLINED ? { ok: false, code: DECLINED, message: value.message, declined: true } : { ok: false, code: value.code, message: value.message };
}

// ---------------------------------------------------------------------------- reply batches

/** The inbox token of reply batches (correlation ids are base-36, so never `_`). */
export const REPLY_BATCH_TOKEN = '_';
const REPLY_BATCH = 4;
/** Reply batches of earlier wasmlet versions did not name the responder; refused with a reason. */
const REPLY_BATCH_ANONYMOUS = 3;

/**
 * Frames the replies one host has for one caller as one message: byte 4, the responding host's id
 * (`[length: u8][ASCII]`, so the caller learns who serves its targets; see envelope.ts), then per
 * reply `[id length: u8][id][frame length: u32 BE][frame]`, a frame being its status byte and
 * payload. `entries` holds, per reply, its id, status and payload (so that no frame is built
 * apart). Small batches come from Node's buffer pool: NATS copies them on at once.
 */
export function frameReplyBatch(hostId: string, entries: readonly (string | number | Uint8Array)[]): Uint8Array {
  if (hostId.length === 0 || hostId.length > 255) throw new WasmletError(HOST_KEY_INVALID, `host id of ${hostId.length} characters`);
  let size = 2 + hostId.length;
  for (let i = 0; i < entries.length; i += 3) size += replyBatchEntrySize(entries[i] as string, entries[i + 2] as Uint8Array);
  const out = Buffer.allocUnsafe(size);
  out[0] = REPLY_BATCH;
  out[1] = hostId.length;
  let at = 2;
  // One byte per character, as sized (ids are ASCII); written natively, not char by char (see utf8Length).
  at += out.write(hostId, at, 'latin1');
  for (let i = 0; i < entries.length; i += 3) {
    const id = entries[i] as string;
    const payload = entries[i + 2] as Uint8Array;
    if (id.length > 255) throw new WasmletError(HOST_KEY_INVALID, `correlation id too long (${id.length} characters)`);
    out[at++] = id.length;
    at += out.write(id, at, 'latin1');
    out.writeUInt32BE(payload.byteLength + 1, at);
    at += 4;
    out[at++] = entries[i + 1] as number;
    out.set(payload, at);
    at += payload.byteLength;
  }
  return out;
}

/** The bytes one reply (its payload after the status byte) adds to a reply batch. */
export function replyBatchEntrySize(id: string, payload: Uint8Array): number {
  return 1 + id.length + 4 + 1 + payload.byteLength;
}

/**
 * Calls `each(id, frame)` for every reply of a batch and returns the responding host's id (as
 * written: the caller checks it before it relies on it). Throws WasmletError(ENVELOPE_INVALID)
 * when garbled (after the replies before the damage).
 */
export function readReplyBatch(data: Uint8Array, each: (id: string, frame: Uint8Array) => void): string {
  if (data.byteLength > 0 && data[0] === REPLY_BATCH_ANONYMOUS) throw invalid('reply batch of an earlier wasmlet (no responding host id)');
  if (data.byteLength < 2 || data[0] !== REPLY_BATCH) throw invalid(`not a reply batch (first byte ${data[0] ?? 'missing'})`);
  const hostLen = data[1]!;
  if (hostLen === 0 || 2 + hostLen > data.byteLength) throw invalid('reply batch truncated');
  let hostId = '';
  for (let c = 0; c < hostLen; c++) hostId += String.fromCharCode(data[2 + c]!);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let at = 2 + hostLen;
  while (at < data.byteLength) {
    const idLen = data[at++]!;
    if (idLen === 0 || at + idLen + 4 > data.byteLength) throw invalid('reply batch truncated');
    let id = '';
    for (let c = 0; c < idLen; c++) id += String.fromCharCode(data[at + c]!);
    at += idLen;
    const len = view.getUint32(at);
    at += 4;
    if (at + len > data.byteLength) throw invalid('reply batch truncated');
    each(id, data.subarray(at, at + len));
    at += len;
  }
  return hostId;
}
