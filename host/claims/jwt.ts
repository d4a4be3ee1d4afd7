/**
 * waSCC's JWT: header `{"typ":"jwt","alg":"Ed25519"}`, base64url segments without padding, an
 * Ed25519 signature over `header.claims` by the issuer's nkey. Only Ed25519 is accepted, so a
 * token cannot downgrade itself to `none` or an HMAC.
 */
import { ClaimsError } from '../errors.ts';
import { signingKey, verifySignature } from './keys.ts';

export const JWT_HEADER = { typ: 'jwt', alg: 'Ed25519' } as const;

export interface JwtHeader {
  typ?: string;
  alg: string;
  [key: string]: unknown;
}

export interface DecodedJwt<T = Record<string, unknown>> {
  token: string;
  header: JwtHeader;
  claims: T;
  /** The bytes the signature covers: `header.claims` as sent. */
  signingInput: Uint8Array;
  signature: Uint8Array;
}

const encoder = new TextEncoder();
const utf8 = new TextDecoder('utf-8', { fatal: true });
const BASE64URL = /^[A-Za-z0-9_-]*$/;

function malformed(message: string, cause?: unknown): ClaimsError {
  return new ClaimsError('CLAIMS_MALFORMED', `malformed claims token: ${message}`, cause === undefined ? undefined : { cause });
}

export function base64urlEncode(data: Uint8Array | string): string {
  return Buffer.from(typeof data === 'string' ? encoder.encode(data) : data).toString('base64url');
}

/** Strict base64url (no padding, no stray characters); Buffer alone silently skips bad input. */
export function base64urlDecode(text: string, what: string): Uint8Array {
  if (!BASE64URL.test(text) || text.length % 4 === 1) throw malformed(`${what} is not base64url without padding`);
  return new Uint8Array(Buffer.from(text, 'base64url'));
}

/** The largest token (and so claims section) accepted: real claims are a few hundred bytes. */
export const MAX_TOKEN_BYTES = 64 * 1024;
/** The largest header segment accepted (`{"typ":"jwt","alg":"Ed25519"}` is 40 characters). */
const MAX_HEADER_CHARS = 1024;

function parseJsonObject(text: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw malformed(`${what} is not UTF-8 JSON`, err);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw malformed(`${what} is not a JSON object`);
  return value as Record<string, unknown>;
}

function segmentText(segment: string, what: string): string {
  const bytes = base64urlDecode(segment, what);
  try {
    return utf8.decode(bytes);
  } catch (err) {
    throw malformed(`${what} is not UTF-8 JSON`, err);
  }
}

/**
 * A token split and checked up to its claims: size, shape, header (Ed25519 only) and signature
 * bytes. The claims are only base64-decoded to text (`claimsText`), not parsed: the signature can
 * be checked before anything the token says is believed.
 */
export interface SplitJwt {
  token: string;
  header: JwtHeader;
  /** The claims segment as UTF-8 text (JSON, not parsed yet). */
  claimsText: string;
  /** The bytes the signature covers: `header.claims` as sent. */
  signingInput: Uint8Array;
  signature: Uint8Array;
}

/** Splits a token without parsing its claims. Throws ClaimsError(CLAIMS_MALFORMED). */
export function splitJwt(token: string): SplitJwt {
  if (typeof token !== 'string') throw malformed('not a string');
  if (token.length > MAX_TOKEN_BYTES) throw malformed(`token is ${token.length} characters, over the limit of ${MAX_TOKEN_BYTES}`);
  const parts = token.split('.');
  if (parts.length !== 3) throw malformed(`expected 3 dot-separated segments, found ${parts.length}`);
  const [headerText, claimsSegment, signatureText] = parts as [string, string, string];
  if (headerText.length > MAX_HEADER_CHARS) throw malformed(`header is ${headerText.length} characters, over the limit of ${MAX_HEADER_CHARS}`);
  const header = parseJsonObject(segmentText(headerText, 'header'), 'header');
  if (header.alg !== JWT_HEADER.alg) {
    throw malformed(`unsupported signing algorithm ${JSON.stringify(header.alg)} (only Ed25519 is accepted)`);
  }
  if (header.typ !== undefined && String(header.typ).toLowerCase() !== 'jwt') {
    throw malformed(`unsupported token type ${JSON.stringify(header.typ)} (expected jwt)`);
  }
  const claimsText = segmentText(claimsSegment, 'claims');
  const signature = base64urlDecode(signatureText, 'signature');
  if (signature.length !== 64) throw malformed(`signature is ${signature.length} bytes, an Ed25519 signature is 64`);
  return { token, header: header as JwtHeader, claimsText, signingInput: encoder.encode(`${headerText}.${claimsSegment}`), signature };
}

/** Parses the claims of a split token (once); throws ClaimsError(CLAIMS_MALFORMED). */
export function parseJwtClaims<T = Record<string, unknown>>(split: SplitJwt): DecodedJwt<T> {
  const claims = parseJsonObject(split.claimsText, 'claims') as T;
  return { token: split.token, header: split.header, claims, signingInput: split.signingInput, signature: split.signature };
}

/** Splits and decodes a token without checking its signature. Throws ClaimsError(CLAIMS_MALFORMED). */
export function decodeJwt<T = Record<string, unknown>>(token: string): DecodedJwt<T> {
  return parseJwtClaims<T>(splitJwt(token));
}

const ISSUER_FIELD = /"iss"\s*:\s*"([^"\\]{0,128})"/g;

/**
 * The values of every `"iss": "…"` in the claims text, found without parsing it (at most 4,
 * first seen first): the keys the signature may be checked with. The parsed claims must then
 * name the key that verified, so a decoy field cannot lend its key to the real one.
 */
export function issuerCandidates(split: Pick<SplitJwt, 'claimsText'>): string[] {
  const out: string[] = [];
  for (const m of split.claimsText.matchAll(ISSUER_FIELD)) {
    if (!out.includes(m[1]!)) out.push(m[1]!);
    if (out.length === 4) break;
  }
  return out;
}

/** True when the token's signature verifies with `publicKey` (an nkey). */
export function verifyJwtSignature(decoded: Pick<SplitJwt, 'signingInput' | 'signature'>, publicKey: string): boolean {
  return verifySignature(publicKey, decoded.signingInput, decoded.signature);
}

/**
 * Encodes `claims` and signs them with `seed` (an nkey seed, usually an account's). The claims
 * are taken as given: the caller sets `iss` to the signer's public key.
 */
export function encodeJwt(claims: object, seed: string): string {
  const key = signingKey(seed);
  const signingInput = `${base64urlEncode(JSON.stringify(JWT_HEADER))}.${base64urlEncode(JSON.stringify(claims))}`;
  return `${signingInput}.${base64urlEncode(key.sign(encoder.encode(signingInput)))}`;
}
