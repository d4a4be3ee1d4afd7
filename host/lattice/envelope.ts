/**
 * Cross-host invocation batches and their authentication (waSCC's antiforgery, amortized, on a
 * closed lattice): every invocation a host sends to one subject during one event-loop turn
 * travels in one NATS message, a batch of envelopes authenticated once. A single call in a turn
 * is a batch of one: there is one format and one code path.
 *
 * Framing (one NATS message payload, no headers, so it survives any NATS hop as-is):
 *
 *     byte 0      format version: 4 (signed), 5 (pairwise MACs), or 0 (open lattice: nothing)
 *     version 4:  [u16 BE n][n bytes: the sender's member credential (a JWT, membership.ts)]
 *                 [64 bytes: Ed25519 signature of label "wasmlet batch v4\0" + body, by the key
 *                 the credential names]
 *     version 5:  [32 bytes: the sender's raw public key][n (1–255)] then n × [8-byte receiver
 *                 fingerprint][16-byte tag]: an HMAC of the body under the key this host shares
 *                 with that receiver (pair-keys.ts)
 *     bytes …     body: msgpack map {hostId, target, sent, reply, session, seq, items: [item…]}
 *                 item: {id, origin, operation, msg: bin, deadline, actor?, linkName?, claims?}
 *
 * A sender signs (version 4, its credential attached) what goes to a target whose hosts it has
 * not verified yet, and tags (version 5) what goes to the hosts it has. Receivers check, before
 * decoding the body: the credential (this lattice's issuer, this lattice, not expired; cached once
 * verified) and the signature, or a tag for themselves from a member they have verified. A
 * version 5 batch with no tag for this host, or from a sender it has no verified credential of,
 * runs nothing: every item is declined (the caller sends it again, signed).
 *
 * `session` (random per sending bus) and `seq` (its batch counter) make each batch unique: a
 * receiver refuses a batch it has seen (replay.ts), and `sent` must be within its freshness
 * window. `hostId`, `target` and `sent` are the same for every item of a batch, so they are
 * written once. Each item keeps its own correlation id and deadline; the receiver answers item
 * `id` under `reply` (the caller's private inbox prefix, inside the authenticated body).
 *
 * Why batches: Ed25519 through node:crypto costs ~20–40 µs to sign and ~50–120 µs to verify on
 * a busy 2-core machine; per call that capped a bus at ~5k calls/s. Per batch, the cost is
 * shared by every call of the turn, and after first contact a MAC costs ~5 µs. Earlier formats
 * (versions 1–3, without credentials) are refused with a reason that says so.
 *
 * Replies travel as reply batches (replies.ts), authenticated the same way.
 */
import { createPrivateKey, createPublicKey, sign as edSign, type KeyObject } from 'node:crypto';
import { decode, encode } from '../codec.ts';
import { sizeBin, sizeHeader, sizeNum, sizeStr, Writer } from '../msgpack-writer.ts';
import { encodePublicKey, isPublicKey, seedBytes, seedKind } from '../claims/keys.ts';
import { BatchNotAddressedError, EnvelopeError, isLatticeAuthError, WasmletError, type LatticeDropReason } from '../errors.ts';
import { MAX_TOKEN_BYTES, verifyBy, type LatticeTrust, type VerifiedMember } from './membership.ts';
import { batchTag, FINGERPRINT_BYTES, hostIdOfRaw, PairKeyring, TAG_BYTES, tagsEqual, type PeerKeys } from './pair-keys.ts';
import type { ActorClaims } from '../types.ts';

/** Error code of a batch that is garbled, forged, replayed, or from a sender that is not admitted. */
export const ENVELOPE_INVALID = 'ENVELOPE_INVALID';
/** Error code of a host seed that cannot sign, or of a batch that cannot be framed. */
export const HOST_KEY_INVALID = 'HOST_KEY_INVALID';

/** Frame version of an open lattice's batch (nothing authenticated). */
export const ENVELOPE_OPEN = 0;
/** Frame version of a signed batch that carries the sender's credential. */
export const ENVELOPE_SIGNED = 4;
/** Frame version of a batch authenticated with pairwise MACs. */
export const ENVELOPE_MACS = 5;
/** Tags one batch carries at most. */
export const MAX_BATCH_TAGS = 255;
const TAG_ENTRY = FINGERPRINT_BYTES + TAG_BYTES;
const SIG_LEN = 64;
const KEY_LEN = 32;
/** Items one batch may carry at most, whoever sent it (senders use a smaller bound). */
export const MAX_BATCH_ITEMS = 65_535;
const BATCH_LABEL = Buffer.from('wasmlet batch v4\0');
/** Reply prefixes callers write: their private inbox (`_INBOX.<nuid>`), never another subject. */
const REPLY_PREFIX = /^_INBOX\.[A-Za-z0-9_-]{1,64}$/;

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
  /** The sending host's id (`N…`); the signature or MAC must be by its key. */
  hostId: string;
  /** Bus target, e.g. `actor.M…` or `provider.wasmlet:keyvalue.default`. */
  target: string;
  /** When the sender sent it, by its clock, ms since the epoch (item deadline − sent = its budget). */
  sent: number;
  /** The caller's reply prefix (its inbox): item `id` is answered on `<reply>._` (replies.ts). */
  reply: string;
  /** The sending bus's session id (random) and this batch's number in it: unique per batch. */
  session: string;
  seq: number;
}

export interface Batch extends BatchHeader {
  items: BatchItem[];
}

/** A batch as received: the sender's verified credential with it (undefined on an open lattice). */
export interface ReceivedBatch extends Batch {
  sender: VerifiedMember | undefined;
}

// ---------------------------------------------------------------------------------- keys

// DER prefix that wraps a raw Ed25519 private key as PKCS#8.
const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex');

/** A host's key: its id, a fast signer, and its pairwise keys with other hosts. */
export interface HostKey {
  /** `N…` */
  readonly publicKey: string;
  /** The 32 raw public-key bytes. */
  readonly raw: Uint8Array;
  sign(data: Uint8Array): Uint8Array;
  /** Where a batch with MACs puts the tag meant for this host. */
  readonly fingerprint: Uint8Array;
  /** The keys this host shares with host `peer` (`N…`); undefined when that is not a usable key. */
  peer(peer: string): PeerKeys | undefined;
}

/**
 * A host key from a server seed (`SN…`) or a member's user seed (`SU…`: the host id is the same
 * key with the server prefix). Throws WasmletError(HOST_KEY_INVALID) without echoing the seed.
 */
export function hostKeyFromSeed(seed: string): HostKey {
  const s = typeof seed === 'string' ? seed.trim() : '';
  const kind = seedKind(s);
  if (kind !== 'server' && kind !== 'user') {
    throw new WasmletError(HOST_KEY_INVALID, kind ? `a host key must be a server or member nkey seed (SN…, SU…), got the seed of a ${kind} key` : 'not a valid nkey seed (expected SN… or SU…, with a valid checksum)');
  }
  const seedRaw = seedBytes(s)!;
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, seedRaw]), format: 'der', type: 'pkcs8' });
  const spki = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  const raw = Uint8Array.from(spki.subarray(spki.length - 32));
  const publicKey = encodePublicKey('server', raw);
  const ring = new PairKeyring(seedRaw, raw);
  return { publicKey, raw, sign: (data) => edSign(null, data, privateKey), fingerprint: ring.fingerprint, peer: (p) => ring.peer(p) };
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

const PREFIX_KEY_BYTES = ['hostId', 'target', 'sent', 'reply', 'session', 'seq', 'items'].reduce((n, k) => n + sizeStr(k), 0);

/**
 * The msgpack bytes that precede the items: a map of 7, the shared fields, then the `items` key
 * and the header of an array of `count`, so that pre-encoded items can be appended as they are.
 */
function batchPrefix(header: BatchHeader, count: number): Uint8Array {
  const size = 1 + PREFIX_KEY_BYTES + sizeStr(header.hostId) + sizeStr(header.target) + sizeNum(header.sent) + sizeStr(header.reply) + sizeStr(header.session) + sizeNum(header.seq) + sizeHeader(count);
  const w = new Writer(size).mapHeader(7);
  w.str('hostId').str(header.hostId).str('target').str(header.target).str('sent').num(header.sent).str('reply').str(header.reply);
  w.str('session').str(header.session).str('seq').num(header.seq);
  return w.str('items').arrayHeader(count).done();
}

/** How a batch is authenticated: not at all (open lattice), signed with the credential, or tagged for known receivers. */
export type BatchAuth = { kind: 'open' } | { kind: 'signed'; token: string } | { kind: 'mac'; peers: readonly PeerKeys[] };

export const OPEN_AUTH: BatchAuth = { kind: 'open' };

/** Bytes a batch adds around its items (frame header, shared fields), for size planning. */
export function batchOverhead(header: BatchHeader, count: number, auth: BatchAuth): number {
  return frameHeaderBytes(auth) + batchPrefix(header, count).byteLength;
}

function frameHeaderBytes(auth: BatchAuth): number {
  if (auth.kind === 'open') return 1;
  if (auth.kind === 'signed') return 1 + 2 + Buffer.byteLength(auth.token) + SIG_LEN;
  return 1 + KEY_LEN + 1 + auth.peers.length * TAG_ENTRY;
}

/**
 * Frames pre-encoded items (from `encodeItem`) as one batch, authenticated as `auth` says with
 * `key`. `header.hostId` must be `key.publicKey`. Throws WasmletError(HOST_KEY_INVALID) otherwise.
 */
export function frameBatch(header: BatchHeader, items: readonly Uint8Array[], key: HostKey, auth: BatchAuth): Uint8Array {
  if (header.hostId !== key.publicKey) throw new WasmletError(HOST_KEY_INVALID, `batch hostId ${header.hostId} is not the signing key ${key.publicKey}`);
  if (items.length === 0 || items.length > MAX_BATCH_ITEMS) throw new WasmletError(HOST_KEY_INVALID, `a batch carries 1–${MAX_BATCH_ITEMS} items, not ${items.length}`);
  if (auth.kind === 'mac' && (auth.peers.length === 0 || auth.peers.length > MAX_BATCH_TAGS)) throw new WasmletError(HOST_KEY_INVALID, `a batch carries 1–${MAX_BATCH_TAGS} tags, not ${auth.peers.length}`);
  if (auth.kind === 'signed' && Buffer.byteLength(auth.token) > MAX_TOKEN_BYTES) throw new WasmletError(HOST_KEY_INVALID, 'member credential too large to frame');
  const prefix = batchPrefix(header, items.length);
  let bodyLen = prefix.byteLength;
  for (const it of items) bodyLen += it.byteLength;
  const start = frameHeaderBytes(auth);
  const frame = Buffer.allocUnsafe(start + bodyLen);
  let at = start;
  frame.set(prefix, at);
  at += prefix.byteLength;
  for (const it of items) {
    frame.set(it, at);
    at += it.byteLength;
  }
  const body = frame.subarray(start);
  if (auth.kind === 'open') {
    frame[0] = ENVELOPE_OPEN;
  } else if (auth.kind === 'signed') {
    frame[0] = ENVELOPE_SIGNED;
    const n = frame.write(auth.token, 3, 'latin1');
    frame.writeUInt16BE(n, 1);
    frame.set(key.sign(labelled(body)), 3 + n);
  } else {
    frame[0] = ENVELOPE_MACS;
    frame.set(key.raw, 1);
    frame[1 + KEY_LEN] = auth.peers.length;
    const tags = 2 + KEY_LEN;
    for (let i = 0; i < auth.peers.length; i++) {
      const peer = auth.peers[i]!;
      frame.set(peer.fingerprint, tags + i * TAG_ENTRY);
      frame.set(batchTag(peer.send, body), tags + i * TAG_ENTRY + FINGERPRINT_BYTES);
    }
  }
  return frame;
}

/** The signed input of a batch: the label, then the body. */
function labelled(body: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(BATCH_LABEL.byteLength + body.byteLength);
  out.set(BATCH_LABEL, 0);
  out.set(body, BATCH_LABEL.byteLength);
  return out;
}

/** `frameBatch` over items given as objects (tests, tools). */
export function encodeBatch(batch: Batch, key: HostKey, auth: BatchAuth): Uint8Array {
  const { items, ...header } = batch;
  return frameBatch(header, items.map(encodeItem), key, auth);
}

// ---------------------------------------------------------------------------------- decoding

export interface VerifyEnvelopeOptions {
  /** What this member trusts (its lattice's issuer), and whether the lattice is open. */
  trust: LatticeTrust;
  /** This host's key: needed to check a batch with MACs (version 5). */
  receiver: HostKey;
  /** Accept only these host ids (when given and not empty). */
  allowedHosts?: ReadonlySet<string>;
}

export function invalid(reason: string, cause?: unknown, kind: LatticeDropReason = 'malformed'): EnvelopeError {
  return new EnvelopeError(kind, `rejected lattice batch: ${reason}`, cause === undefined ? undefined : { cause });
}

/** A sender's credential that did not verify: forged, or genuine but not admitting it here. */
export function refusedMember(err: unknown): EnvelopeError {
  const kind: LatticeDropReason = isLatticeAuthError(err) && err.code === 'MEMBER_REFUSED' ? 'refused' : 'forged';
  return invalid((err as Error).message, err, kind);
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

/** Decodes and checks the body of a batch whose authentication (if any) passed. */
function decodeBody(body: Uint8Array, sender: VerifiedMember | undefined, senderId: string | undefined): ReceivedBatch {
  if (body.byteLength === 0) throw invalid('truncated (no body)');
  let value: unknown;
  try {
    value = decode(body);
  } catch (err) {
    throw invalid(`body is not msgpack (${(err as Error).message})`, err);
  }
  if (!isPlainObject(value)) throw invalid('body is not a msgpack map');
  for (const f of ['hostId', 'target', 'reply', 'session'] as const) {
    if (!nonEmpty(value[f])) throw invalid(`field "${f}" must be a non-empty string`);
  }
  const sent = asNumber(value.sent);
  if (sent === undefined) throw invalid('field "sent" must be a number');
  const seq = asNumber(value.seq);
  if (seq === undefined || !Number.isSafeInteger(seq) || seq < 0) throw invalid('field "seq" must be a whole number');
  if (!REPLY_PREFIX.test(value.reply as string)) throw invalid('field "reply" must be an inbox (_INBOX.<id>)');
  if ((value.session as string).length > 64) throw invalid('field "session" is too long');
  const hostId = value.hostId as string;
  if (senderId !== undefined && hostId !== senderId) throw invalid(`body names host ${hostId.slice(0, 60)}, but ${senderId} authenticated it`, undefined, 'forged');
  if (senderId === undefined && !isPublicKey(hostId, 'server')) throw invalid(`hostId ${JSON.stringify(hostId.slice(0, 60))} is not a server public key (N…)`);
  return { hostId, target: value.target as string, sent, reply: value.reply as string, session: value.session as string, seq, items: checkItems(value.items), sender };
}

/**
 * Decodes and verifies a framed batch. On a closed lattice: the sender's credential (version 4)
 * or a verified sender and this host's MAC (version 5) come first, then the body is decoded.
 * Throws WasmletError(ENVELOPE_INVALID) whose message names the reason: truncated, unknown or
 * earlier version, an open batch on a closed lattice (or the reverse), a credential that is not
 * this lattice's, a signature or MAC that does not verify, bad msgpack, missing or mistyped fields
 * (one bad item rejects the whole batch), a host outside the allow-list. Throws
 * BatchNotAddressedError when nothing of the batch may run here but the caller should be told:
 * a MAC'd batch with no tag for this host, or from a sender whose credential it has not seen.
 */
export function decodeBatch(frame: Uint8Array, options: VerifyEnvelopeOptions): ReceivedBatch {
  const { trust } = options;
  if (frame.byteLength === 0) throw invalid('truncated (0 bytes)');
  const version = frame[0];
  if (version === ENVELOPE_OPEN) {
    if (!trust.insecure) throw invalid('a batch from an open lattice member, and this lattice is closed', undefined, 'refused');
    return allowed(decodeBody(frame.subarray(1), undefined, undefined), options);
  }
  if (version === 1 || version === 2 || version === 3) throw invalid(`format version ${version} (an earlier wasmlet, without lattice credentials); this member reads versions 4 and 5`, undefined, 'refused');
  if (version !== ENVELOPE_SIGNED && version !== ENVELOPE_MACS) throw invalid(`unknown format version ${version}`);
  if (trust.insecure) throw invalid('an authenticated batch, and this member runs an open lattice (--insecure)', undefined, 'refused');
  if (version === ENVELOPE_SIGNED) {
    if (frame.byteLength < 3) throw invalid(`truncated (${frame.byteLength} bytes)`);
    const n = (frame[1]! << 8) | frame[2]!;
    const sigAt = 3 + n;
    if (n === 0 || n > MAX_TOKEN_BYTES || frame.byteLength <= sigAt + SIG_LEN) throw invalid(`truncated (${frame.byteLength} bytes)`);
    let sender: VerifiedMember;
    try {
      sender = trust.member(Buffer.from(frame.buffer, frame.byteOffset + 3, n).toString('latin1'));
    } catch (err) {
      throw refusedMember(err);
    }
    const body = frame.subarray(sigAt + SIG_LEN);
    if (!verifyBy(sender.key, labelled(body), frame.subarray(sigAt, sigAt + SIG_LEN))) throw invalid(`signature does not verify against ${sender.hostId}`, undefined, 'forged');
    return allowed(decodeBody(body, sender, sender.hostId), options);
  }
  // Version 5: MACs.
  if (frame.byteLength < 2 + KEY_LEN) throw invalid(`truncated (${frame.byteLength} bytes)`);
  const tags = frame[1 + KEY_LEN]!;
  if (tags === 0) throw invalid('a batch with MACs must carry at least one tag');
  const bodyStart = 2 + KEY_LEN + tags * TAG_ENTRY;
  if (frame.byteLength <= bodyStart) throw invalid(`truncated (${frame.byteLength} bytes)`);
  const senderId = hostIdOfRaw(frame.subarray(1, 1 + KEY_LEN));
  const body = frame.subarray(bodyStart);
  const at = findTag(frame, tags, options.receiver.fingerprint);
  if (at < 0) throw notAddressed(body, `lattice batch from host ${senderId} carries no MAC for host ${options.receiver.publicKey}`);
  const peer = options.receiver.peer(senderId);
  if (!peer) throw invalid(`host ${senderId} has no usable key for MACs`, undefined, 'forged');
  if (!tagsEqual(frame.subarray(at, at + TAG_BYTES), batchTag(peer.receive, body))) throw invalid(`MAC does not verify against host ${senderId}`, undefined, 'forged');
  const sender = trust.known(senderId);
  // Authentic, but this member has no verified credential of the sender (it restarted, or the
  // credential expired): decline, so the caller sends it again with its credential.
  if (!sender) throw notAddressed(body, `host ${senderId} is not a member this host has verified`);
  return allowed(decodeBody(body, sender, senderId), options);
}

function allowed(batch: ReceivedBatch, options: VerifyEnvelopeOptions): ReceivedBatch {
  if (options.allowedHosts && options.allowedHosts.size > 0 && !options.allowedHosts.has(batch.hostId)) throw invalid(`host ${batch.hostId} is not in the allowed host list`, undefined, 'refused');
  return batch;
}

/** A batch that may not run here: its reply inbox and item ids, so that each is declined. */
function notAddressed(body: Uint8Array, message: string): BatchNotAddressedError {
  let value: unknown;
  try {
    value = decode(body);
  } catch (err) {
    throw invalid(`body is not msgpack (${(err as Error).message})`, err);
  }
  if (!isPlainObject(value) || typeof value.reply !== 'string' || !REPLY_PREFIX.test(value.reply)) throw invalid('field "reply" must be an inbox (_INBOX.<id>)');
  return new BatchNotAddressedError(message, value.reply, checkItems(value.items).map((i) => i.id));
}

/** Offset of the tag filed under `fingerprint` in a version 5 frame, or -1. */
function findTag(frame: Uint8Array, tags: number, fingerprint: Uint8Array): number {
  outer: for (let i = 0; i < tags; i++) {
    const at = 2 + KEY_LEN + i * TAG_ENTRY;
    for (let j = 0; j < FINGERPRINT_BYTES; j++) if (frame[at + j] !== fingerprint[j]) continue outer;
    return at + FINGERPRINT_BYTES;
  }
  return -1;
}

export type { KeyObject };
