/**
 * Reply frames of the lattice (see envelope.ts for invocation batches): one status byte then the
 * payload, and reply batches that carry a turn's replies to one caller in one NATS message.
 */
import { decode, encode } from '../codec.ts';
import { WasmletError } from '../errors.ts';
import { HOST_KEY_INVALID, invalid, isPlainObject, refusedMember, type HostKey } from './envelope.ts';
import { MAX_TOKEN_BYTES, verifyBy, type LatticeTrust, type VerifiedMember } from './membership.ts';
import { batchTag, hostIdOfRaw, TAG_BYTES, tagsEqual, type PeerKeys } from './pair-keys.ts';

// ---------------------------------------------------------------------------------- replies

/** Status byte of a reply frame: a result follows. */
export const REPLY_OK = 0;
/** Status byte: msgpack `{code, message}` follows. */
export const REPLY_ERROR = 1;
/** Status byte: msgpack `{code: "DECLINED", message}` follows; the receiver did not run the item (it stops serving the target, or could not authenticate the batch for itself) and the caller may send it again. */
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
/** Reply batch of an open lattice: names the responding host, authenticates nothing. */
const REPLY_BATCH_OPEN = 4;
/** Signed reply batch: carries the responder's credential. */
const REPLY_BATCH_SIGNED = 6;
/** Reply batch with a MAC for the caller. */
const REPLY_BATCH_MAC = 7;
const KEY_LEN = 32;
const SIG_LEN = 64;
const LABEL = 'wasmlet replies v6\0';

/** How a reply batch is authenticated: mirrors the batch it answers (signed for signed, MAC for MAC'd). */
export type ReplyAuth = { kind: 'open'; hostId: string } | { kind: 'signed'; token: string; key: HostKey } | { kind: 'mac'; key: HostKey; peer: PeerKeys };

const prefixes = new Map<string, Buffer>();

/**
 * The bytes a reply batch's authentication covers before its entries: the label and the caller's
 * inbox (one per calling bus, so cached, bounded).
 */
function replyPrefixBytes(reply: string): Buffer {
  let p = prefixes.get(reply);
  if (p === undefined) {
    p = Buffer.from(`${LABEL}${reply}\0`, 'latin1');
    if (prefixes.size >= 4096) prefixes.clear();
    prefixes.set(reply, p);
  }
  return p;
}

/** Bytes of the frame before the entries. */
function replyHeaderBytes(auth: ReplyAuth): number {
  if (auth.kind === 'open') return 2 + auth.hostId.length;
  if (auth.kind === 'signed') return 3 + auth.token.length + SIG_LEN;
  return 1 + KEY_LEN + TAG_BYTES;
}

/**
 * Frames the replies one host has for one caller (whose inbox is `reply`) as one message: a
 * header that authenticates the responder (see `ReplyAuth`), then per reply
 * `[id length: u8][id][frame length: u32 BE][frame]`, a frame being its status byte and payload.
 * `entries` holds, per reply, its id, status and payload (so that no frame is built apart).
 * Signed and MAC'd batches cover the caller's inbox too: a reply batch cannot be replayed to
 * another caller. Small batches come from Node's buffer pool: NATS copies them on at once.
 */
export function frameReplyBatch(auth: ReplyAuth, reply: string, entries: readonly (string | number | Uint8Array)[]): Uint8Array {
  if (auth.kind === 'open' && (auth.hostId.length === 0 || auth.hostId.length > 255)) throw new WasmletError(HOST_KEY_INVALID, `host id of ${auth.hostId.length} characters`);
  const start = replyHeaderBytes(auth);
  let size = start;
  for (let i = 0; i < entries.length; i += 3) size += replyBatchEntrySize(entries[i] as string, entries[i + 2] as Uint8Array);
  const out = Buffer.allocUnsafe(size);
  let at = start;
  for (let i = 0; i < entries.length; i += 3) {
    const id = entries[i] as string;
    const payload = entries[i + 2] as Uint8Array;
    if (id.length > 255) throw new WasmletError(HOST_KEY_INVALID, `correlation id too long (${id.length} characters)`);
    out[at++] = id.length;
    // One byte per character, as sized (ids are ASCII); written natively, not char by char.
    at += out.write(id, at, 'latin1');
    out.writeUInt32BE(payload.byteLength + 1, at);
    at += 4;
    out[at++] = entries[i + 1] as number;
    out.set(payload, at);
    at += payload.byteLength;
  }
  const body = out.subarray(start);
  if (auth.kind === 'open') {
    out[0] = REPLY_BATCH_OPEN;
    out[1] = auth.hostId.length;
    out.write(auth.hostId, 2, 'latin1');
  } else if (auth.kind === 'signed') {
    out[0] = REPLY_BATCH_SIGNED;
    out.writeUInt16BE(auth.token.length, 1);
    out.write(auth.token, 3, 'latin1');
    const prefix = replyPrefixBytes(reply);
    out.set(auth.key.sign(Buffer.concat([prefix, body])), 3 + auth.token.length);
  } else {
    out[0] = REPLY_BATCH_MAC;
    out.set(auth.key.raw, 1);
    out.set(batchTag(auth.peer.replySend, body, replyPrefixBytes(reply)), 1 + KEY_LEN);
  }
  return out;
}

/** The bytes one reply (its payload after the status byte) adds to a reply batch. */
export function replyBatchEntrySize(id: string, payload: Uint8Array): number {
  return 1 + id.length + 4 + 1 + payload.byteLength;
}

export interface ReplyBatchOptions {
  trust: LatticeTrust;
  /** The caller's key (to check a MAC from a responder). */
  key: HostKey;
  /** The caller's inbox the batch arrived on. */
  reply: string;
}

/** Who answered: the responder's host id, and its verified credential (undefined on an open lattice). */
export interface Responder {
  hostId: string;
  member: VerifiedMember | undefined;
}

/**
 * Checks who sent a reply batch (before anything of it is read), then calls `each(id, frame)` for
 * every reply. Throws WasmletError(ENVELOPE_INVALID) when it is forged, from a responder this
 * caller has not verified (a MAC'd batch from an unknown member), from the wrong kind of lattice,
 * or garbled (after the replies before the damage).
 */
export function readReplyBatch(data: Uint8Array, options: ReplyBatchOptions, each: (id: string, frame: Uint8Array, responder: Responder) => void): Responder {
  const { trust } = options;
  if (data.byteLength < 2) throw invalid(`not a reply batch (${data.byteLength} bytes)`);
  const version = data[0];
  let responder: Responder;
  let at: number;
  if (version === REPLY_BATCH_OPEN) {
    if (!trust.insecure) throw invalid('a reply batch from an open lattice member, and this lattice is closed', undefined, 'refused');
    const hostLen = data[1]!;
    if (hostLen === 0 || 2 + hostLen > data.byteLength) throw invalid('reply batch truncated');
    responder = { hostId: Buffer.from(data.buffer, data.byteOffset + 2, hostLen).toString('latin1'), member: undefined };
    at = 2 + hostLen;
  } else if (version === REPLY_BATCH_SIGNED || version === REPLY_BATCH_MAC) {
    if (trust.insecure) throw invalid('an authenticated reply batch, and this member runs an open lattice (--insecure)', undefined, 'refused');
    if (version === REPLY_BATCH_SIGNED) {
      const n = data.byteLength >= 3 ? (data[1]! << 8) | data[2]! : 0;
      if (n === 0 || n > MAX_TOKEN_BYTES || data.byteLength < 3 + n + SIG_LEN) throw invalid('reply batch truncated');
      let member: VerifiedMember;
      try {
        member = trust.member(Buffer.from(data.buffer, data.byteOffset + 3, n).toString('latin1'));
      } catch (err) {
        throw refusedMember(err);
      }
      at = 3 + n + SIG_LEN;
      const signed = Buffer.concat([replyPrefixBytes(options.reply), data.subarray(at)]);
      if (!verifyBy(member.key, signed, data.subarray(3 + n, at))) throw invalid(`reply batch signature does not verify against ${member.hostId}`, undefined, 'forged');
      responder = { hostId: member.hostId, member };
    } else {
      if (data.byteLength < 1 + KEY_LEN + TAG_BYTES) throw invalid('reply batch truncated');
      const hostId = hostIdOfRaw(data.subarray(1, 1 + KEY_LEN));
      const member = trust.known(hostId);
      if (!member) throw invalid(`reply batch with a MAC from ${hostId}, a member this host has not verified`, undefined, 'refused');
      const peer = options.key.peer(hostId);
      at = 1 + KEY_LEN + TAG_BYTES;
      if (!peer || !tagsEqual(data.subarray(1 + KEY_LEN, at), batchTag(peer.replyReceive, data.subarray(at), replyPrefixBytes(options.reply)))) {
        throw invalid(`reply batch MAC does not verify against ${hostId}`, undefined, 'forged');
      }
      responder = { hostId, member };
    }
  } else {
    throw invalid(`not a reply batch (version ${version}${version === 3 ? ', an earlier wasmlet' : ''})`);
  }
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  while (at < data.byteLength) {
    const idLen = data[at++]!;
    if (idLen === 0 || at + idLen + 4 > data.byteLength) throw invalid('reply batch truncated');
    const id = Buffer.from(data.buffer, data.byteOffset + at, idLen).toString('latin1');
    at += idLen;
    const len = view.getUint32(at);
    at += 4;
    if (at + len > data.byteLength) throw invalid('reply batch truncated');
    each(id, data.subarray(at, at + len), responder);
    at += len;
  }
  return responder;
}
