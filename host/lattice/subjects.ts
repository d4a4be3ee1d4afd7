/**
 * Lattice subject names and the token encoding that keeps them valid.
 *
 * Every subject starts with `wasmlet.<lattice>.<scope>.`; the lattice id is restricted to
 * letters, digits, `-` and `_` so it is always one safe token (and part of valid KV bucket
 * names). The scope is derived from the lattice's issuer (`i` + 16 hex digits of the SHA-256 of
 * its public key), so two lattices with the same name but different issuers never share a
 * subject or a queue group; an open lattice (`--insecure`) has the scope `open`.
 *
 *     wasmlet.<lattice>.<scope>.rpc.<target tokens>     invocations (queue group per target)
 *     wasmlet.<lattice>.<scope>.ctl.<…>                 control requests (JSON)
 *     wasmlet.<lattice>.<scope>.evt.<type>              lifecycle events and heartbeats (CloudEvents JSON)
 *
 * Bus targets look like `actor.M…` or `provider.wasmlet:keyvalue.default`. NATS treats `.` as
 * the token separator, refuses empty tokens, whitespace and the wildcards `*` and `>`, and
 * many tools expect plain ASCII; `:` is valid. So a target keeps its `.`-separated structure
 * (which makes `wasmlet.<lattice>.rpc.actor.*` a meaningful wildcard), and inside each token
 * every byte outside `A–Z a–z 0–9 _ - :` is written `%XX` (UTF-8, uppercase hex), `%` itself
 * included; an empty token is written `%`. The mapping is injective and reversible.
 *
 * JetStream KV keys allow `A–Z a–z 0–9 _ - / = .` only, so KV keys use the same scheme with
 * `=` as the escape character (`:` escaped too): see `encodeKvToken`.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';

export const latticeIdSchema = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'a lattice id: 1–64 letters, digits, "-" or "_"');

const SUBJECT_SAFE = /^[A-Za-z0-9_:-]+$/;
const KV_SAFE = /^[A-Za-z0-9_-]+$/;

function escapeBytes(token: string, safe: (byte: number) => boolean, escape: string): string {
  let out = '';
  for (const byte of Buffer.from(token, 'utf8')) {
    out += safe(byte) ? String.fromCharCode(byte) : `${escape}${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

function unescapeBytes(token: string, escape: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < token.length; i++) {
    if (token[i] === escape) {
      bytes.push(parseInt(token.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(token.charCodeAt(i));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

const isWordByte = (b: number) => (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || b === 0x5f || b === 0x2d;

/** One NATS subject token for arbitrary text (see the module comment). */
export function encodeSubjectToken(token: string): string {
  if (token === '') return '%';
  if (SUBJECT_SAFE.test(token)) return token;
  return escapeBytes(token, (b) => isWordByte(b) || b === 0x3a, '%');
}

export function decodeSubjectToken(token: string): string {
  return token === '%' ? '' : unescapeBytes(token, '%');
}

/** One JetStream KV key token for arbitrary text: `=XX` escapes; empty text is `=`. */
export function encodeKvToken(token: string): string {
  if (token === '') return '=';
  if (KV_SAFE.test(token)) return token;
  return escapeBytes(token, isWordByte, '=');
}

export function decodeKvToken(token: string): string {
  return token === '=' ? '' : unescapeBytes(token, '=');
}

/** The scope of an open lattice (`--insecure`). */
export const OPEN_SCOPE = 'open';

/** The subject scope of a closed lattice: `i` + 16 hex digits of the SHA-256 of its issuer key. */
export function latticeScope(issuer: string): string {
  return `i${createHash('sha256').update(issuer).digest('hex').slice(0, 16)}`;
}

/** `wasmlet.<lattice>.<scope>`: every subject of one lattice starts with it. */
export function subjectPrefix(lattice: string, scope: string): string {
  return `wasmlet.${lattice}.${scope}`;
}

/** The subject a bus target is served on, under a lattice's `prefix`. */
export function rpcSubject(prefix: string, target: string): string {
  return `${prefix}.rpc.${target.split('.').map(encodeSubjectToken).join('.')}`;
}

/** A control subject: `<prefix>.ctl.<parts…>` (parts encoded as tokens). */
export function ctlSubject(prefix: string, ...parts: string[]): string {
  return `${prefix}.ctl.${parts.map(encodeSubjectToken).join('.')}`;
}

/** An event subject: `<prefix>.evt.<type>`. */
export function eventSubject(prefix: string, type: string): string {
  return `${prefix}.evt.${encodeSubjectToken(type)}`;
}

/** The KV bucket of a lattice's links, or claims: `wasmlet_<lattice>_<scope>_<what>`. */
export function latticeBucket(lattice: string, scope: string, what: 'links' | 'claims'): string {
  return `wasmlet_${lattice}_${scope}_${what}`;
}
