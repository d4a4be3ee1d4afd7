/**
 * Signed records for the lattice's JetStream KV buckets (links, claims). On a closed lattice a
 * value is a JSON document
 *
 *     {"v":1, "body": "<the record as JSON text>", "by": "<writer's member credential>",
 *      "at": <ms>, "nonce": "<random>", "sig": "<Ed25519 signature, base64url>"}
 *
 * whose signature covers a label, the bucket, the key, `at`, the nonce and the body: a record
 * cannot be moved to another key or bucket (buckets carry the lattice and its issuer scope), and
 * a reader that has seen a newer record for a key refuses an older one (a rollback). Deletions are
 * records too (body `null`), so that a deletion is authenticated like a write; a bare KV delete
 * or purge by someone else is ignored by readers.
 *
 * What this does not defend against: a member that joins later sees only the latest value of
 * each key, so a rollback written while no member watched (by someone who can write the bucket:
 * NATS permissions confine that to ctl and hosts) goes unnoticed by it.
 */
import { randomBytes } from 'node:crypto';
import { LatticeAuthError } from '../errors.ts';
import type { LatticeTrust, MemberRole, VerifiedMember } from './membership.ts';
import { MAX_TOKEN_BYTES, verifyBy } from './membership.ts';

const LABEL = 'wasmlet record v1\0';
const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });
/** A record larger than this is refused before it is parsed. */
export const MAX_RECORD_BYTES = 256 * 1024;

export interface OpenedRecord {
  /** The record (parsed JSON); null for a deletion. */
  body: unknown;
  /** When it was written, by the writer's clock (ms). */
  at: number;
  /** Undefined on an open lattice. */
  by: VerifiedMember | undefined;
}

function signingInput(bucket: string, key: string, at: number, nonce: string, body: string): Uint8Array {
  return encoder.encode(`${LABEL}${bucket}\0${key}\0${at}\0${nonce}\0${body}`);
}

/** The bytes to store under `key` in `bucket`: signed on a closed lattice, the plain JSON on an open one (`null` for a deletion). */
export function sealRecord(trust: LatticeTrust, bucket: string, key: string, body: unknown, now = Date.now()): Uint8Array {
  const text = JSON.stringify(body ?? null);
  if (trust.insecure) return encoder.encode(text);
  const nonce = randomBytes(12).toString('base64url');
  const sig = trust.sign(signingInput(bucket, key, now, nonce, text)).toString('base64url');
  return encoder.encode(JSON.stringify({ v: 1, body: text, by: trust.self!.token, at: now, nonce, sig }));
}

function refused(message: string): LatticeAuthError {
  return new LatticeAuthError('MESSAGE_REFUSED', message);
}

/**
 * Opens a stored record: on a closed lattice checks the writer's credential and role and the
 * signature. Throws LatticeAuthError naming the reason (MEMBER_REFUSED, MESSAGE_REFUSED).
 */
export function openRecord(trust: LatticeTrust, bucket: string, key: string, value: Uint8Array, roles: readonly MemberRole[]): OpenedRecord {
  if (value.byteLength > MAX_RECORD_BYTES) throw refused(`record of ${value.byteLength} bytes (at most ${MAX_RECORD_BYTES})`);
  let raw: unknown;
  try {
    raw = JSON.parse(decoder.decode(value));
  } catch {
    throw refused('record is not JSON');
  }
  if (trust.insecure) return { body: raw, at: 0, by: undefined };
  const r = raw as { v?: unknown; body?: unknown; by?: unknown; at?: unknown; nonce?: unknown; sig?: unknown };
  if (r === null || typeof r !== 'object' || r.v !== 1 || typeof r.body !== 'string' || typeof r.by !== 'string' || typeof r.nonce !== 'string' || typeof r.sig !== 'string' || typeof r.at !== 'number') {
    throw refused('unsigned record on a closed lattice');
  }
  if (r.by.length > MAX_TOKEN_BYTES) throw refused('record credential too large');
  const by = trust.member(r.by);
  if (!roles.includes(by.role)) throw new LatticeAuthError('MEMBER_REFUSED', `a ${by.role} (${by.key}) may not write ${bucket} records (only ${roles.join(' or ')})`);
  if (!verifyBy(by.key, signingInput(bucket, key, r.at, r.nonce, r.body), Buffer.from(r.sig, 'base64url'))) throw refused(`record signature does not verify against ${by.key}`);
  let body: unknown;
  try {
    body = JSON.parse(r.body);
  } catch {
    throw refused('record body is not JSON');
  }
  return { body, at: r.at, by };
}
