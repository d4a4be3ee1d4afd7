/**
 * nkeys: Ed25519 keys encoded as base32 text with a role prefix and a CRC16 (NATS / waSCC).
 * nkeys.js does the cryptography, but it does not know waSCC's module role (`M…`), so the small
 * text codec below re-encodes raw keys between roles; signing and verifying stay in nkeys.js.
 */
import { createPublicKey, randomBytes, verify as edVerify, type KeyObject } from 'node:crypto';
import { createPair, fromSeed, Prefix } from 'nkeys.js';
import { WasmletError } from '../errors.ts';

/** Error code of unreadable or wrong-kind keys and seeds (thrown as a WasmletError). */
export const KEY_INVALID = 'KEY_INVALID';

export type KeyKind = 'account' | 'module' | 'server' | 'user' | 'operator' | 'cluster';

export const KEY_KINDS: readonly KeyKind[] = ['account', 'module', 'server', 'user', 'operator', 'cluster'];

/** Role prefix bytes; base32 of each starts with the letter in the comment. */
const ROLE_BYTE: Record<KeyKind, number> = {
  account: 0, // A
  module: 12 << 3, // M (waSCC's actor identity)
  server: 13 << 3, // N
  operator: 14 << 3, // O
  cluster: 2 << 3, // C
  user: 20 << 3, // U
};
const SEED_BYTE = 18 << 3; // S
const KIND_BY_ROLE = new Map<number, KeyKind>(Object.entries(ROLE_BYTE).map(([k, v]) => [v, k as KeyKind]));
/** Roles nkeys.js can hold a seed for; the module role is mapped through the account role. */
const NKEYS_PREFIX: Partial<Record<KeyKind, Prefix>> = {
  account: Prefix.Account,
  server: Prefix.Server,
  operator: Prefix.Operator,
  cluster: Prefix.Cluster,
  user: Prefix.User,
};

export interface GeneratedKeyPair {
  kind: KeyKind;
  publicKey: string;
  /** The secret seed (`S…`). Keep it out of logs and output. */
  seed: string;
}

export interface SigningKey {
  kind: KeyKind;
  publicKey: string;
  sign(data: Uint8Array): Uint8Array;
}

const B32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const B32_INDEX = new Map([...B32].map((c, i) => [c, i]));

function base32Encode(data: Uint8Array): string {
  let out = '';
  let buffer = 0;
  let bits = 0;
  for (const byte of data) {
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

function base32Decode(text: string): Uint8Array | undefined {
  const out: number[] = [];
  let buffer = 0;
  let bits = 0;
  for (const c of text) {
    const v = B32_INDEX.get(c);
    if (v === undefined) return undefined;
    buffer = ((buffer << 5) | v) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      out.push((buffer >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Uint8Array.from(out);
}

/** CRC-16/XMODEM, as nkeys uses. */
function crc16(data: Uint8Array): number {
  let crc = 0;
  for (const byte of data) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

function withChecksum(raw: Uint8Array): string {
  const crc = crc16(raw);
  const full = new Uint8Array(raw.length + 2);
  full.set(raw);
  full[raw.length] = crc & 0xff;
  full[raw.length + 1] = crc >>> 8;
  return base32Encode(full);
}

/** Decodes nkey text and checks its CRC; returns the bytes before the checksum. */
function checkedDecode(text: string): Uint8Array | undefined {
  const full = base32Decode(text);
  if (!full || full.length < 3) return undefined;
  const raw = full.subarray(0, full.length - 2);
  const crc = full[full.length - 2]! | (full[full.length - 1]! << 8);
  return crc16(raw) === crc ? raw : undefined;
}

function encodePublic(kind: KeyKind, key: Uint8Array): string {
  const raw = new Uint8Array(33);
  raw[0] = ROLE_BYTE[kind];
  raw.set(key, 1);
  return withChecksum(raw);
}

function encodeSeed(kind: KeyKind, seed: Uint8Array): string {
  const role = ROLE_BYTE[kind];
  const raw = new Uint8Array(34);
  // Two prefix bytes spread so that both letters print: 'S' then the role's letter.
  raw[0] = SEED_BYTE | (role >> 5);
  raw[1] = (role & 31) << 3;
  raw.set(seed, 2);
  return withChecksum(raw);
}

function decodeSeed(seed: string): { kind: KeyKind; raw: Uint8Array } | undefined {
  const raw = checkedDecode(seed);
  if (!raw || raw.length !== 34) return undefined;
  if ((raw[0]! & 0xf8) !== SEED_BYTE) return undefined;
  const role = ((raw[0]! & 7) << 5) | ((raw[1]! & 0xf8) >> 3);
  const kind = KIND_BY_ROLE.get(role);
  return kind ? { kind, raw: raw.slice(2) } : undefined;
}

function article(kind: KeyKind): string {
  return `${/^[aeiou]/.test(kind) ? 'an' : 'a'} ${kind}`;
}

/** The kind of a public nkey, or undefined when it is not a well-formed one (bad text, length or CRC). */
export function keyKind(publicKey: string): KeyKind | undefined {
  if (typeof publicKey !== 'string') return undefined;
  const raw = checkedDecode(publicKey);
  if (!raw || raw.length !== 33) return undefined;
  return KIND_BY_ROLE.get(raw[0]!);
}

/** True when `publicKey` is a well-formed public nkey (of `kind`, when given). */
export function isPublicKey(publicKey: string, kind?: KeyKind): boolean {
  const found = keyKind(publicKey);
  return found !== undefined && (kind === undefined || found === kind);
}

/** The kind of a seed (`S…`), or undefined when it is not a well-formed one. */
export function seedKind(seed: string): KeyKind | undefined {
  return typeof seed === 'string' ? decodeSeed(seed)?.kind : undefined;
}

/** A new random key pair of `kind`. */
export function generateKeyPair(kind: KeyKind): GeneratedKeyPair {
  const prefix = NKEYS_PREFIX[kind];
  if (prefix !== undefined) {
    const kp = createPair(prefix);
    try {
      return { kind, publicKey: kp.getPublicKey(), seed: new TextDecoder().decode(kp.getSeed()) };
    } finally {
      kp.clear();
    }
  }
  if (kind !== 'module') throw new WasmletError(KEY_INVALID, `unknown key kind '${String(kind)}'`);
  const seed = encodeSeed('module', randomBytes(32));
  return { kind, publicKey: signingKey(seed).publicKey, seed };
}

/**
 * A signer for `seed` (any kind, module included). Throws WasmletError(KEY_INVALID) without
 * echoing the seed when it is not a well-formed seed, or not of `expected` kind.
 */
export function signingKey(seed: string, expected?: KeyKind): SigningKey {
  const decoded = decodeSeed(typeof seed === 'string' ? seed.trim() : '');
  if (!decoded) throw new WasmletError(KEY_INVALID, 'not a valid nkey seed (expected text starting with S, with a valid checksum)');
  if (expected && decoded.kind !== expected) {
    throw new WasmletError(KEY_INVALID, `expected the seed of ${article(expected)} key, got the seed of ${article(decoded.kind)} key`);
  }
  // nkeys.js holds every role but module; a module seed signs the same through the account role.
  const viaKind = NKEYS_PREFIX[decoded.kind] !== undefined ? decoded.kind : 'account';
  const kp = fromSeed(new TextEncoder().encode(encodeSeed(viaKind, decoded.raw)));
  const viaPublic = checkedDecode(kp.getPublicKey())!;
  const publicKey = encodePublic(decoded.kind, viaPublic.subarray(1));
  return { kind: decoded.kind, publicKey, sign: (data) => kp.sign(data) };
}

/** Verifies an Ed25519 signature by the holder of `publicKey` (any kind). False on a bad key. */
export function verifySignature(publicKey: string, data: Uint8Array, signature: Uint8Array): boolean {
  const key = ed25519PublicKey(publicKey);
  if (!key || signature.byteLength !== 64) return false;
  try {
    return edVerify(null, data, key, signature);
  } catch {
    return false;
  }
}

/** DER prefix of an Ed25519 SubjectPublicKeyInfo; the 32 raw key bytes follow. */
const SPKI_ED25519 = Buffer.from('302a300506032b6570032100', 'hex');
const keyObjects = new Map<string, KeyObject>();

/**
 * The node:crypto key of an nkey public key (any kind), cached. Verifying with OpenSSL is
 * several times faster than nkeys.js's pure-JS Ed25519, and it matters on every actor load.
 */
export function ed25519PublicKey(publicKey: string): KeyObject | undefined {
  let key = keyObjects.get(publicKey);
  if (key) return key;
  const raw = publicKeyBytes(publicKey);
  if (!raw) return undefined;
  key = createPublicKey({ key: Buffer.concat([SPKI_ED25519, raw]), format: 'der', type: 'spki' });
  if (keyObjects.size >= 4096) keyObjects.clear();
  keyObjects.set(publicKey, key);
  return key;
}

/** The 32 raw Ed25519 bytes of a public nkey (of `kind`, when given); undefined when it is not one. */
export function publicKeyBytes(publicKey: string, kind?: KeyKind): Uint8Array | undefined {
  if (!isPublicKey(publicKey, kind)) return undefined;
  return checkedDecode(publicKey)!.slice(1, 33);
}

/** The 32 raw private-key bytes of an nkey seed (`S…`); undefined when it is not a valid seed. */
export function seedBytes(seed: string): Uint8Array | undefined {
  if (!seedKind(seed)) return undefined;
  return checkedDecode(seed)!.subarray(2, 34);
}

/** The nkey public key text (`A…`, `M…`, `N…`…) of raw Ed25519 public-key bytes. */
export function encodePublicKey(kind: KeyKind, raw: Uint8Array): string {
  return encodePublic(kind, raw);
}
