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

function decodeJson(segment: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(utf8.decode(base64urlDecode(segment, what)));
  } catch (err) {
    if (err instanceof ClaimsError) throw err;
    throw malformed(`${what} is not UTF-8 JSON`, err);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw malformed(`${what} is not a JSON object`);
  return value as Record<string, unknown>;
}

/** Splits and decodes a token without checking its signature. Throws ClaimsError(CLAIMS_MALFORMED). */
export function decodeJwt<T = Record<string, unknown>>(token: string): DecodedJwt<T> {
  if (typeof token !== 'string') throw malformed('not a string');
  const parts = token.split('.');
  if (parts.length !== 3) throw malformed(`expected 3 dot-separated segments, found ${parts.length}`);
  const [headerText, claimsText, signatureText] = parts as [string, string, string];
  const header = decodeJson(headerText, 'header');
  if (header.alg !== JWT_HEADER.alg) {
    throw malformed(`unsupported signing algorithm ${JSON.stringify(header.alg)} (only Ed25519 is accepted)`);
  }
  if (header.typ !== undefined && String(header.typ).toLowerCase() !== 'jwt') {
    throw malformed(`unsupported token type ${JSON.stringify(header.typ)} (expected jwt)`);
  }
  const claims = decodeJson(claimsText, 'claims');
  const signature = base64urlDecode(signatureText, 'signature');
  if (signature.length !== 64) throw malformed(`signature is ${signature.length} bytes, an Ed25519 signature is 64`);
  return {
    token,
    header: header as JwtHeader,
    claims: claims as T,
    signingInput: encoder.encode(`${headerText}.${claimsText}`),
    signature,
  };
}

/** True when the token's signature verifies with `publicKey` (an nkey). */
export function verifyJwtSignature(decoded: DecodedJwt<unknown>, publicKey: string): boolean {
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
