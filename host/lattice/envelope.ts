/**
 * The cross-host invocation envelope and its signature (waSCC's antiforgery): the sending host
 * signs the msgpack body with its server nkey (`N…`, seed `SN…`); the receiver verifies the
 * signature against the `hostId` written inside the signed body, and optionally against an
 * allow-list of host keys.
 *
 * Framing (one NATS message payload, no headers, so it survives any NATS hop as-is):
 *
 *     byte 0      format version, 1
 *     bytes 1–64  Ed25519 signature of the body
 *     bytes 65…   body: msgpack map {id, origin, target, operation, msg: bin, hostId,
 *                 deadline, sent, actor?, linkName?, claims?}
 *
 * Signing and verifying cost ~40 µs + ~120 µs per call on a busy 2-core machine, which bounds
 * cross-host throughput at a few thousand calls per second per core. A lattice that relies on
 * NATS security instead (accounts, TLS) may turn antiforgery off on every host: senders then
 * write version 0 frames (`0` + body, no signature) and receivers skip verification. A host
 * with antiforgery on refuses unsigned frames.
 *
 * Replies are framed as one status byte then the payload: 0 + result bytes, or 1 + msgpack
 * `{code, message}`. Replies are not signed: they travel to the caller's private inbox and are
 * matched by an unguessable-in-practice correlation id; the antiforgery concern is invocations.
 *
 * Signing uses node:crypto's Ed25519 (tens of µs) rather than nkeys.js's pure-JS one
 * (milliseconds), since every cross-host call is signed and verified.
 */
import { createPrivateKey, createPublicKey, sign as edSign, verify as edVerify, type KeyObject } from 'node:crypto';
import { decode, encode } from '../codec.ts';
import { isPublicKey, seedKind } from '../claims/keys.ts';
import { WasmletError } from '../errors.ts';
import type { ActorClaims } from '../types.ts';

/** Error code of an envelope that is garbled, forged, or from a host that is not allowed. */
export const ENVELOPE_INVALID = 'ENVELOPE_INVALID';
/** Error code of a host seed that cannot sign envelopes. */
export const HOST_KEY_INVALID = 'HOST_KEY_INVALID';

export const ENVELOPE_VERSION = 1;
/** Frame version of an unsigned envelope (antiforgery off). */
export const ENVELOPE_UNSIGNED = 0;
const SIG_LEN = 64;
const HEADER_LEN = 1 + SIG_LEN;

export interface Envelope {
  /** Correlation id, unique per sending host. */
  id: string;
  /** Who calls: an actor's module key or a provider id. */
  origin: string;
  /** Bus target, e.g. `actor.M…` or `provider.wasmlet:keyvalue.default`. */
  target: string;
  operation: string;
  msg: Uint8Array;
  /** The sending host's public key (`N…`); the signature must verify against it. */
  hostId: string;
  /** Absolute deadline by the sender's clock, ms since the epoch. */
  deadline: number;
  /** When the sender sent it, by its clock, ms since the epoch (deadline − sent = the budget). */
  sent: number;
  /** For provider targets: the calling actor and its link name. */
  actor?: string;
  linkName?: string;
  /** The calling actor's claims, when the sender chooses to pass them. */
  claims?: ActorClaims;
}

// ---------------------------------------------------------------------------------- keys

const B32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const B32_INDEX = new Map([...B32].map((c, i) => [c, i]));

/** Base32 without padding; the CRC was already checked by keys.ts. */
function base32Decode(text: string): Uint8Array {
  const out: number[] = [];
  let buffer = 0;
  let bits = 0;
  for (const c of text) {
    buffer = ((buffer << 5) | B32_INDEX.get(c)!) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      out.push((buffer >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Uint8Array.from(out);
}

// DER prefixes that wrap a raw Ed25519 key as PKCS#8 (private) and SPKI (public).
const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_ED25519 = Buffer.from('302a300506032b6570032100', 'hex');

/** The node:crypto public key of an nkey of any role (`N…`, `M…`…); undefined when malformed. */
export function publicKeyObject(publicKey: string): KeyObject | undefined {
  if (!isPublicKey(publicKey)) return undefined;
  const raw = base32Decode(publicKey).subarray(1, 33);
  return createPublicKey({ key: Buffer.concat([SPKI_ED25519, raw]), format: 'der', type: 'spki' });
}

/** A host's signing key: its public key (the host id) and a fast signer. */
export interface HostKey {
  /** `N…` */
  readonly publicKey: string;
  sign(data: Uint8Array): Uint8Array;
}

/** A host key from a server seed (`SN…`). Throws WasmletError(HOST_KEY_INVALID) without echoing the seed. */
export function hostKeyFromSeed(seed: string): HostKey {
  const s = typeof seed === 'string' ? seed.trim() : '';
  const kind = seedKind(s);
  if (kind !== 'server') {
    throw new WasmletError(HOST_KEY_INVALID, kind ? `a host key must be a server nkey seed (SN…), got the seed of a ${kind} key` : 'not a valid nkey seed (expected SN…, with a valid checksum)');
  }
  const raw = base32Decode(s).subarray(2, 34);
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, raw]), format: 'der', type: 'pkcs8' });
  const spki = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  const publicKey = encodeServerKey(spki.subarray(SPKI_ED25519.length));
  return { publicKey, sign: (data) => edSign(null, data, privateKey) };
}

/** Server role public key text for raw key bytes (base32 of prefix + key + CRC16). */
function encodeServerKey(key: Uint8Array): string {
  const raw = new Uint8Array(35);
  raw[0] = 13 << 3; // 'N'
  raw.set(key, 1);
  let crc = 0;
  for (const byte of raw.subarray(0, 33)) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  raw[33] = crc & 0xff;
  raw[34] = crc >>> 8;
  let out = '';
  let buffer = 0;
  let bits = 0;
  for (const byte of raw) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += B32[(buffer >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += B32[(buffer << (5 - bits)) & 31];
  return out;
}

// ---------------------------------------------------------------------------------- envelopes

/** Encodes and signs `env` (its `hostId` must be `key.publicKey`); unsigned when `sign` is false. */
export function encodeEnvelope(env: Envelope, key: HostKey, options: { sign?: boolean } = {}): Uint8Array {
  if (env.hostId !== key.publicKey) throw new WasmletError(HOST_KEY_INVALID, `envelope hostId ${env.hostId} is not the signing key ${key.publicKey}`);
  const body: Record<string, unknown> = {
    id: env.id,
    origin: env.origin,
    target: env.target,
    operation: env.operation,
    msg: env.msg,
    hostId: env.hostId,
    deadline: env.deadline,
    sent: env.sent,
  };
  if (env.actor !== undefined) body.actor = env.actor;
  if (env.linkName !== undefined) body.linkName = env.linkName;
  if (env.claims !== undefined) body.claims = env.claims;
  const bytes = encode(body);
  if (options.sign === false) {
    const unsigned = new Uint8Array(1 + bytes.byteLength);
    unsigned[0] = ENVELOPE_UNSIGNED;
    unsigned.set(bytes, 1);
    return unsigned;
  }
  const sig = key.sign(bytes);
  const frame = new Uint8Array(HEADER_LEN + bytes.byteLength);
  frame[0] = ENVELOPE_VERSION;
  frame.set(sig, 1);
  frame.set(bytes, HEADER_LEN);
  return frame;
}

export interface VerifyEnvelopeOptions {
  /** Accept only these host keys (when given and not empty). */
  allowedHosts?: ReadonlySet<string>;
  /** Cache of parsed public keys by host id (pass one per receiver; it grows to `cacheLimit`). */
  keyCache?: Map<string, KeyObject>;
  cacheLimit?: number;
  /** Require a valid signature (antiforgery). Default true; when false, signatures are not checked. */
  requireSignature?: boolean;
}

function invalid(reason: string, cause?: unknown): WasmletError {
  return new WasmletError(ENVELOPE_INVALID, `rejected lattice envelope: ${reason}`, cause === undefined ? undefined : { cause });
}

const STRING_FIELDS = ['id', 'origin', 'target', 'operation', 'hostId'] as const;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object') return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function asNumber(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'bigint') return Number(v);
  return undefined;
}

/**
 * Decodes and verifies a framed envelope. Throws WasmletError(ENVELOPE_INVALID) whose message
 * names the reason: truncated, unknown version, bad msgpack, missing or mistyped fields, a host
 * id that is not a server key, a host that is not allowed, or a signature that does not verify.
 */
export function decodeEnvelope(frame: Uint8Array, options: VerifyEnvelopeOptions = {}): Envelope {
  const requireSignature = options.requireSignature ?? true;
  if (frame.byteLength === 0) throw invalid('truncated (0 bytes)');
  const version = frame[0];
  if (version === ENVELOPE_UNSIGNED) {
    if (requireSignature) throw invalid('unsigned envelope, and this host requires signed invocations (antiforgery)');
  } else if (version !== ENVELOPE_VERSION) {
    throw invalid(`unknown format version ${version}`);
  } else if (frame.byteLength <= HEADER_LEN) {
    throw invalid(`truncated (${frame.byteLength} bytes)`);
  }
  const signed = version === ENVELOPE_VERSION;
  const sig = signed ? frame.subarray(1, HEADER_LEN) : undefined;
  const body = frame.subarray(signed ? HEADER_LEN : 1);
  if (body.byteLength === 0) throw invalid('truncated (no body)');
  let value: unknown;
  try {
    value = decode(body);
  } catch (err) {
    throw invalid(`body is not msgpack (${(err as Error).message})`, err);
  }
  if (!isPlainObject(value)) throw invalid('body is not a msgpack map');
  for (const f of STRING_FIELDS) {
    if (typeof value[f] !== 'string' || value[f] === '') throw invalid(`field "${f}" must be a non-empty string`);
  }
  if (!(value.msg instanceof Uint8Array)) throw invalid('field "msg" must be bytes');
  const deadline = asNumber(value.deadline);
  const sent = asNumber(value.sent);
  if (deadline === undefined) throw invalid('field "deadline" must be a number');
  if (sent === undefined) throw invalid('field "sent" must be a number');
  for (const f of ['actor', 'linkName'] as const) {
    if (value[f] !== undefined && typeof value[f] !== 'string') throw invalid(`field "${f}" must be a string`);
  }
  if (value.claims !== undefined && !isPlainObject(value.claims)) throw invalid('field "claims" must be a map');
  const hostId = value.hostId as string;
  if (!isPublicKey(hostId, 'server')) throw invalid(`hostId ${JSON.stringify(hostId.slice(0, 60))} is not a server public key (N…)`);
  if (options.allowedHosts && options.allowedHosts.size > 0 && !options.allowedHosts.has(hostId)) {
    throw invalid(`host ${hostId} is not in the allowed host list`);
  }
  if (requireSignature) {
    let key = options.keyCache?.get(hostId);
    if (!key) {
      key = publicKeyObject(hostId)!;
      if (options.keyCache) {
        if (options.keyCache.size >= (options.cacheLimit ?? 1024)) options.keyCache.clear();
        options.keyCache.set(hostId, key);
      }
    }
    if (!edVerify(null, body, key, sig!)) throw invalid(`signature does not verify against host ${hostId}`);
  }
  const env: Envelope = {
    id: value.id as string,
    origin: value.origin as string,
    target: value.target as string,
    operation: value.operation as string,
    msg: value.msg,
    hostId,
    deadline,
    sent,
  };
  if (value.actor !== undefined) env.actor = value.actor as string;
  if (value.linkName !== undefined) env.linkName = value.linkName as string;
  if (value.claims !== undefined) env.claims = value.claims as unknown as ActorClaims;
  return env;
}

// ---------------------------------------------------------------------------------- replies

const REPLY_OK = 0;
const REPLY_ERROR = 1;

export function encodeOkReply(result: Uint8Array): Uint8Array {
  const frame = new Uint8Array(1 + result.byteLength);
  frame[0] = REPLY_OK;
  frame.set(result, 1);
  return frame;
}

export function encodeErrorReply(code: string, message: string): Uint8Array {
  const body = encode({ code, message });
  const frame = new Uint8Array(1 + body.byteLength);
  frame[0] = REPLY_ERROR;
  frame.set(body, 1);
  return frame;
}

export type Reply = { ok: true; result: Uint8Array } | { ok: false; code: string; message: string };

/** Decodes a reply frame; throws WasmletError(ENVELOPE_INVALID) when garbled. */
export function decodeReply(frame: Uint8Array): Reply {
  if (frame.byteLength === 0) throw invalid('empty reply');
  if (frame[0] === REPLY_OK) return { ok: true, result: frame.subarray(1) };
  if (frame[0] !== REPLY_ERROR) throw invalid(`unknown reply status ${frame[0]}`);
  let value: unknown;
  try {
    value = decode(frame.subarray(1));
  } catch (err) {
    throw invalid(`error reply is not msgpack (${(err as Error).message})`, err);
  }
  if (!isPlainObject(value) || typeof value.code !== 'string' || typeof value.message !== 'string') {
    throw invalid('error reply must be a map {code, message}');
  }
  return { ok: false, code: value.code, message: value.message };
}
