/**
 * Cross-host invocation batches and their signature (waSCC's antiforgery, amortized): every
 * invocation a host sends to one subject during one event-loop turn travels in one NATS message,
 * a batch of envelopes signed once with the sending host's server nkey (`N…`, seed `SN…`). The
 * receiver verifies the one signature against the `hostId` written inside the signed body (and
 * optionally against an allow-list of host keys), then dispatches each envelope. A single call
 * in a turn is a batch of one: there is one format and one code path.
 *
 * Framing (one NATS message payload, no headers, so it survives any NATS hop as-is):
 *
 *     byte 0      format version: 2 (signed batch), 3 (batch with pairwise MACs) or 0 (unsigned
 *                 batch, antiforgery off)
 *     version 2:  bytes 1–64: Ed25519 signature of the body
 *     version 3:  byte 1: n (1–255), then n × [8-byte receiver fingerprint][16-byte tag]: an
 *                 HMAC of the body under the key this host shares with that receiver (pair-keys.ts)
 *     bytes …     body: msgpack map {hostId, target, sent, reply, items: [item…]}
 *                 item: {id, origin, operation, msg: bin, deadline, actor?, linkName?, claims?}
 *
 * A sender signs (version 2) what goes to a target whose hosts it does not know yet, and tags
 * (version 3) what goes to the hosts it has heard from. A receiver that finds no tag for itself
 * in a version 3 batch runs nothing of it: it declines every item (the caller sends them again,
 * signed) and, by answering, lets the caller learn it.
 *
 * `hostId`, `target` and `sent` are the same for every item of a batch, so they are written
 * once. Each item keeps its own correlation id and deadline; the receiver answers item `id`
 * under `reply` (the caller's private inbox prefix, inside the authenticated body).
 *
 * Why batches: Ed25519 through node:crypto costs ~20–40 µs to sign and ~50–120 µs to verify on
 * a busy 2-core machine; per call that capped a bus at ~5k calls/s. Per batch, the cost is
 * shared by every call of the turn. Version 1 (one signed envelope per message, earlier wasmlet)
 * is refused with a reason that says so.
 *
 * Replies are framed as one status byte then the payload: 0 + result bytes, 1 + msgpack
 * `{code, message}`, or 2 + msgpack `{code: "DECLINED", message}`: the receiver did not run the
 * item (its subscription was closing when the batch arrived, or the batch had no MAC for it)
 * and the caller may send it again. Replies are not signed: they travel to the caller's private
 * inbox and are matched by correlation id; the antiforgery concern is invocations. The replies a
 * host has for one caller at the end of an event-loop turn travel together, as one reply batch
 * on `<reply>._` that names the answering host (frames in replies.ts).
 *
 * Signing uses node:crypto's Ed25519 rather than nkeys.js's pure-JS one (milliseconds).
 */
import { createPrivateKey, createPublicKey, sign as edSign, verify as edVerify, type KeyObject } from 'node:crypto';
import { decode, encode } from '../codec.ts';
import { sizeBin, sizeHeader, sizeNum, sizeStr, Writer } from '../msgpack-writer.ts';
import { ed25519PublicKey, encodePublicKey, isPublicKey, seedBytes, seedKind } from '../claims/keys.ts';
import { BatchNotAddressedError, WasmletError } from '../errors.ts';
import { batchTag, FINGERPRINT_BYTES, PairKeyring, TAG_BYTES, tagsEqual, type PeerKeys } from './pair-keys.ts';
import type { ActorClaims } from '../types.ts';

/** Error code of a batch that is garbled, forged, or from a host that is not allowed. */
export const ENVELOPE_INVALID = 'ENVELOPE_INVALID';
/** Error code of a host seed that cannot sign, or of a batch that cannot be framed. */
export const HOST_KEY_INVALID = 'HOST_KEY_INVALID';

/** Frame version of a signed batch. */
export const ENVELOPE_VERSION = 2;
/** Frame version of a batch authenticated with pairwise MACs. */
export const ENVELOPE_MACS = 3;
/** Tags one batch carries at most. */
export const MAX_BATCH_TAGS = 255;
const TAG_ENTRY = FINGERPRINT_BYTES + TAG_BYTES;
/** Frame version of an unsigned batch (antiforgery off). */
export const ENVELOPE_UNSIGNED = 0;
/** The single-envelope format of earlier wasmlet versions; refused with a clear reason. */
const LEGACY_SINGLE = 1;
const SIG_LEN = 64;
const HEADER_LEN = 1 + SIG_LEN;
/** Items one batch may carry at most, whoever sent it (senders use a smaller bound). */
export const MAX_BATCH_ITEMS = 65_535;

/** One invocation inside a batch, as the sender writes it. */
export interface BatchItem {
  /** Correlation id, unique per sending host; one subject token (no `.`, whitespace, `*`, `>`). */
  id: string;
  /** Who calls: an actor's module key or a provider id. */
  origin: string;
  operation: string;
  msg: Uint8Array;
  /** Absolute deadline by the sender's clock, ms since the epoch. */
  deadline: number;
  /** For provider targets: the calling actor and its link name. */
  actor?: string;
  linkName?: string;
  /** The calling actor's claims, when the sender chooses to pass them. */
  claims?: ActorClaims;
}

/** What every item of a batch shares. */
export interface BatchHeader {
  /** The sending host's public key (`N…`); the signature must verify against it. */
  hostId: string;
  /** Bus target, e.g. `actor.M…` or `provider.wasmlet:keyvalue.default`. */
  target: string;
  /** When the sender sent it, by its clock, ms since the epoch (item deadline − sent = its budget). */
  sent: number;
  /** The caller's reply prefix: item `id` is answered on `<reply>.<id>`. */
  reply: string;
}

export interface Batch extends BatchHeader {
  items: BatchItem[];
}

// ---------------------------------------------------------------------------------- keys

// DER prefix that wraps a raw Ed25519 private key as PKCS#8.
const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex');

/** A host's key: its public key (the host id), a fast signer, and its pairwise keys with other hosts. */
export interface HostKey {
  /** `N…` */
  readonly publicKey: string;
  sign(data: Uint8Array): Uint8Array;
  /** Where a batch with MACs puts the tag meant for this host. */
  readonly fingerprint: Uint8Array;
  /** The keys this host shares with host `peer` (`N…`); undefined when that is not a usable key. */
  peer(peer: string): PeerKeys | undefined;
}

/** A host key from a server seed (`SN…`). Throws WasmletError(HOST_KEY_INVALID) without echoing the seed. */
export function hostKeyFromSeed(seed: string): HostKey {
  const s = typeof seed === 'string' ? seed.trim() : '';
  const kind = seedKind(s);
  if (kind !== 'server') {
    throw new WasmletError(HOST_KEY_INVALID, kind ? `a host key must be a server nkey seed (SN…), got the seed of a ${kind} key` : 'not a valid nkey seed (expected SN…, with a valid checksum)');
  }
  const seedRaw = seedBytes(s)!;
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, seedRaw]), format: 'der', type: 'pkcs8' });
  const spki = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  const raw = spki.subarray(spki.length - 32);
  const publicKey = encodePublicKey('server', raw);
  const ring = new PairKeyring(seedRaw, Uint8Array.from(raw));
  return { publicKey, sign: (data) => edSign(null, data, privateKey), fingerprint: ring.fingerprint, peer: (p) => ring.peer(p) };
}

// ---------------------------------------------------------------------------------- encoding

/**
 * One item as msgpack, ready to be framed by `frameBatch`. Encoding items one by one lets the
 * sender learn each item's size (to split batches) and reject an unencodable call on its own.
 */
export function encodeItem(item: BatchItem): Uint8Array {
  const claims = item.claims === undefined ? undefined : encode(item.claims);
  let count = 5;
  let size = ITEM_KEY_BYTES + sizeStr(item.id) + sizeStr(item.origin) + sizeStr(item.operation) + sizeBin(item.msg.byteLength) + sizeNum(item.deadline);
  if (item.actor !== undefined) {
    count++;
    size += sizeStr('actor') + sizeStr(item.actor);
  }
  if (item.linkName !== undefined) {
    count++;
    size += sizeStr('linkName') + sizeStr(item.linkName);
  }
  if (claims !== undefined) {
    count++;
    size += sizeStr('claims') + claims.byteLength;
  }
  const w = new Writer(size + sizeHeader(count)).mapHeader(count);
  w.str('id').str(item.id).str('origin').str(item.origin).str('operation').str(item.operation).str('msg').bin(item.msg).str('deadline').num(item.deadline);
  if (item.actor !== undefined) w.str('actor').str(item.actor);
  if (item.linkName !== undefined) w.str('linkName').str(item.linkName);
  if (claims !== undefined) w.str('claims').raw(claims);
  return w.done();
}

const ITEM_KEY_BYTES = ['id', 'origin', 'operation', 'msg', 'deadline'].reduce((n, k) => n + sizeStr(k), 0);

const PREFIX_KEY_BYTES = ['hostId', 'target', 'sent', 'reply', 'items'].reduce((n, k) => n + sizeStr(k), 0);

/**
 * The msgpack bytes that precede the items: a map of 5, the shared fields, then the `items` key
 * and the header of an array of `count`, so that pre-encoded items can be appended as they are.
 */
function batchPrefix(header: BatchHeader, count: number): Uint8Array {
  const size = 1 + PREFIX_KEY_BYTES + sizeStr(header.hostId) + sizeStr(header.target) + sizeNum(header.sent) + sizeStr(header.reply) + sizeHeader(count);
  const w = new Writer(size).mapHeader(5);
  w.str('hostId').str(header.hostId).str('target').str(header.target).str('sent').num(header.sent).str('reply').str(header.reply);
  return w.str('items').arrayHeader(count).done();
}

export interface FrameOptions {
  /** Sign or tag the batch (antiforgery). Default true; false frames an unsigned batch. */
  sign?: boolean;
  /** Tag the batch for these receivers (version 3) instead of signing it. At most MAX_BATCH_TAGS. */
  macFor?: readonly PeerKeys[];
}

/** Bytes a batch adds around its items (frame header, shared fields), for size planning. */
export function batchOverhead(header: BatchHeader, count: number, options: FrameOptions = {}): number {
  return frameHeaderBytes(options) + batchPrefix(header, count).byteLength;
}

function frameHeaderBytes(options: FrameOptions): number {
  if (options.sign === false) return 1;
  const tags = options.macFor?.length ?? 0;
  return tags > 0 ? 2 + tags * TAG_ENTRY : HEADER_LEN;
}

/**
 * Frames pre-encoded items (from `encodeItem`) as one batch: tagged for `macFor` when given,
 * else signed with `key`, unless `sign` is false. `header.hostId` must be `key.publicKey`.
 * Throws WasmletError(HOST_KEY_INVALID) otherwise.
 */
export function frameBatch(header: BatchHeader, items: readonly Uint8Array[], key: HostKey, options: FrameOptions = {}): Uint8Array {
  if (header.hostId !== key.publicKey) throw new WasmletError(HOST_KEY_INVALID, `batch hostId ${header.hostId} is not the signing key ${key.publicKey}`);
  if (items.length === 0 || items.length > MAX_BATCH_ITEMS) throw new WasmletError(HOST_KEY_INVALID, `a batch carries 1–${MAX_BATCH_ITEMS} items, not ${items.length}`);
  const tagged = options.sign !== false && options.macFor !== undefined && options.macFor.length > 0 ? options.macFor : undefined;
  if (tagged && tagged.length > MAX_BATCH_TAGS) throw new WasmletError(HOST_KEY_INVALID, `a batch carries at most ${MAX_BATCH_TAGS} tags, not ${tagged.length}`);
  const prefix = batchPrefix(header, items.length);
  let bodyLen = prefix.byteLength;
  for (const it of items) bodyLen += it.byteLength;
  const signed = options.sign !== false && !tagged;
  const start = frameHeaderBytes(options);
  const frame = Buffer.allocUnsafe(start + bodyLen);
  frame[0] = tagged ? ENVELOPE_MACS : signed ? ENVELOPE_VERSION : ENVELOPE_UNSIGNED;
  let at = start;
  frame.set(prefix, at);
  at += prefix.byteLength;
  for (const it of items) {
    frame.set(it, at);
    at += it.byteLength;
  }
  if (signed) frame.set(key.sign(frame.subarray(HEADER_LEN)), 1);
  if (tagged) {
    const body = frame.subarray(start);
    frame[1] = tagged.length;
    for (let i = 0; i < tagged.length; i++) {
      const peer = tagged[i]!;
      frame.set(peer.fingerprint, 2 + i * TAG_ENTRY);
      frame.set(batchTag(peer.send, body), 2 + i * TAG_ENTRY + FINGERPRINT_BYTES);
    }
  }
  return frame;
}

/** `frameBatch` over items given as objects (tests, tools). */
export function encodeBatch(batch: Batch, key: HostKey, options: FrameOptions = {}): Uint8Array {
  const { items, ...header } = batch;
  return frameBatch(header, items.map(encodeItem), key, options);
}

// ---------------------------------------------------------------------------------- decoding

export interface VerifyEnvelopeOptions {
  /** Accept only these host keys (when given and not empty). */
  allowedHosts?: ReadonlySet<string>;
  /** Cache of parsed public keys by host id (pass one per receiver; it grows to `cacheLimit`). */
  keyCache?: Map<string, KeyObject>;
  cacheLimit?: number;
  /** Require a valid signature or MAC (antiforgery). Default true; when false, neither is checked. */
  requireSignature?: boolean;
  /** This host's key: needed to check a batch with MACs (version 3). */
  receiver?: HostKey;
}

export function invalid(reason: string, cause?: unknown): WasmletError {
  return new WasmletError(ENVELOPE_INVALID, `rejected lattice batch: ${reason}`, cause === undefined ? undefined : { cause });
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object') return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function asNumber(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'bigint') return Number(v);
  return undefined;
}

const nonEmpty = (v: unknown): v is string => typeof v === 'string' && v !== '';
/** A subject with no empty token, whitespace or wildcard (the receiver publishes replies on it). */
const REPLY_SUBJECT = /^[^\s.*>]+(\.[^\s.*>]+)*$/;
/** One subject token. */
const ID_TOKEN = /^[^\s.*>]{1,64}$/;

/**
 * A function of its own, not a closure in `decodeBatch`: the TypeScript loader names every arrow
 * function it creates (`Object.defineProperty`), a slow path in V8, once per batch.
 */
function checkItems(items: unknown): BatchItem[] {
  if (!Array.isArray(items) || items.length === 0) throw invalid('field "items" must be a non-empty array');
  if (items.length > MAX_BATCH_ITEMS) throw invalid(`${items.length} items (at most ${MAX_BATCH_ITEMS})`);
  const out: BatchItem[] = new Array(items.length);
  for (let i = 0; i < items.length; i++) out[i] = checkItem(items[i], i);
  return out;
}

function checkItem(value: unknown, i: number): BatchItem {
  const at = `item ${i}`;
  if (!isPlainObject(value)) throw invalid(`${at} is not a msgpack map`);
  for (const f of ['id', 'origin', 'operation'] as const) {
    if (!nonEmpty(value[f])) throw invalid(`${at}: field "${f}" must be a non-empty string`);
  }
  if (!ID_TOKEN.test(value.id as string)) throw invalid(`${at}: field "id" must be one subject token of at most 64 characters`);
  if (!(value.msg instanceof Uint8Array)) throw invalid(`${at}: field "msg" must be bytes`);
  const deadline = asNumber(value.deadline);
  if (deadline === undefined) throw invalid(`${at}: field "deadline" must be a number`);
  for (const f of ['actor', 'linkName'] as const) {
    if (value[f] !== undefined && typeof value[f] !== 'string') throw invalid(`${at}: field "${f}" must be a string`);
  }
  if (value.claims !== undefined && !isPlainObject(value.claims)) throw invalid(`${at}: field "claims" must be a map`);
  // Every field written, absent ones as undefined: one object shape for every item.
  return {
    id: value.id as string,
    origin: value.origin as string,
    operation: value.operation as string,
    msg: value.msg,
    deadline,
    actor: value.actor as string | undefined,
    linkName: value.linkName as string | undefined,
    claims: value.claims as unknown as ActorClaims | undefined,
  };
}

/**
 * Decodes and verifies a framed batch. Throws WasmletError(ENVELOPE_INVALID) whose message names
 * the reason: truncated, unknown version, bad msgpack, missing or mistyped fields (in the batch
 * or in any one item: one bad item rejects the whole batch, since a host that signs validly never
 * writes one), a host id that is not a server key, a host that is not allowed, or a signature
 * that does not verify.
 */
export function decodeBatch(frame: Uint8Array, options: VerifyEnvelopeOptions = {}): Batch {
  const requireSignature = options.requireSignature ?? true;
  if (frame.byteLength === 0) throw invalid('truncated (0 bytes)');
  const version = frame[0];
  let bodyStart = 1;
  if (version === ENVELOPE_UNSIGNED) {
    if (requireSignature) throw invalid('unsigned batch, and this host requires signed invocations (antiforgery)');
  } else if (version === LEGACY_SINGLE) {
    throw invalid('format version 1 (one envelope per message, from an earlier wasmlet); this host reads batches (version 2)');
  } else if (version === ENVELOPE_VERSION) {
    if (frame.byteLength <= HEADER_LEN) throw invalid(`truncated (${frame.byteLength} bytes)`);
    bodyStart = HEADER_LEN;
  } else if (version === ENVELOPE_MACS) {
    const tags = frame.byteLength > 1 ? frame[1]! : 0;
    if (tags === 0) throw invalid('a batch with MACs must carry at least one tag');
    bodyStart = 2 + tags * TAG_ENTRY;
    if (frame.byteLength <= bodyStart) throw invalid(`truncated (${frame.byteLength} bytes)`);
  } else {
    throw invalid(`unknown format version ${version}`);
  }
  const body = frame.subarray(bodyStart);
  if (body.byteLength === 0) throw invalid('truncated (no body)');
  let value: unknown;
  try {
    value = decode(body);
  } catch (err) {
    throw invalid(`body is not msgpack (${(err as Error).message})`, err);
  }
  if (!isPlainObject(value)) throw invalid('body is not a msgpack map');
  for (const f of ['hostId', 'target', 'reply'] as const) {
    if (!nonEmpty(value[f])) throw invalid(`field "${f}" must be a non-empty string`);
  }
  const sent = asNumber(value.sent);
  if (sent === undefined) throw invalid('field "sent" must be a number');
  if (!REPLY_SUBJECT.test(value.reply as string)) throw invalid('field "reply" must be a subject without wildcards or whitespace');
  const hostId = value.hostId as string;
  // The signature check comes before the item checks, so a forged batch is reported as forged.
  const cached = options.keyCache?.get(hostId);
  if (!cached && !isPublicKey(hostId, 'server')) throw invalid(`hostId ${JSON.stringify(hostId.slice(0, 60))} is not a server public key (N…)`);
  if (options.allowedHosts && options.allowedHosts.size > 0 && !options.allowedHosts.has(hostId)) {
    throw invalid(`host ${hostId} is not in the allowed host list`);
  }
  const items = value.items;
  if (requireSignature && version === ENVELOPE_VERSION) {
    let key = cached;
    if (!key) {
      key = ed25519PublicKey(hostId)!;
      if (options.keyCache) {
        if (options.keyCache.size >= (options.cacheLimit ?? 1024)) options.keyCache.clear();
        options.keyCache.set(hostId, key);
      }
    }
    if (!edVerify(null, body, key, frame.subarray(1, HEADER_LEN))) throw invalid(`signature does not verify against host ${hostId}`);
  } else if (requireSignature && version === ENVELOPE_MACS) {
    const receiver = options.receiver;
    if (!receiver) throw invalid('a batch with MACs, and this receiver has no host key to check them');
    const at = findTag(frame, receiver.fingerprint);
    if (at < 0) {
      const checked = checkItems(items);
      throw new BatchNotAddressedError(
        `lattice batch from host ${hostId} carries no MAC for host ${receiver.publicKey}`,
        value.reply as string,
        checked.map((i) => i.id),
      );
    }
    const peer = receiver.peer(hostId);
    if (!peer) throw invalid(`host ${hostId} has no usable key for MACs`);
    if (!tagsEqual(frame.subarray(at, at + TAG_BYTES), batchTag(peer.receive, body))) throw invalid(`MAC does not verify against host ${hostId}`);
  }
  return { hostId, target: value.target as string, sent, reply: value.reply as string, items: checkItems(items) };
}

/** Offset of the tag filed under `fingerprint` in a version 3 frame, or -1. */
function findTag(frame: Uint8Array, fingerprint: Uint8Array): number {
  const tags = frame[1]!;
  outer: for (let i = 0; i < tags; i++) {
    const at = 2 + i * TAG_ENTRY;
    for (let j = 0; j < FINGERPRINT_BYTES; j++) if (frame[at + j] !== fingerprint[j]) continue outer;
    return at + FINGERPRINT_BYTES;
  }
  return -1;
}
