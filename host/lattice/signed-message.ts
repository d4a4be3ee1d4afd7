/**
 * Signed NATS messages for the lattice's low-volume traffic: control requests and their
 * replies, lifecycle events and heartbeats. The payload stays what it was (JSON, CloudEvents);
 * two headers authenticate it:
 *
 *     Wasmlet-Cred: <the sender's member credential (a JWT)>
 *     Wasmlet-Auth: v1 <sent ms> <nonce> <signature>
 *
 * The signature (Ed25519, the key the credential names, base64url) covers a label, the subject
 * the message was published on, its reply subject, the send time, the nonce and the payload, so
 * a captured message cannot be moved to another subject (another host's control subject), given
 * another reply subject, or sent again: the receiver refuses a send time outside its freshness
 * window and a nonce it has seen within it.
 *
 * On an open lattice (`--insecure`) nothing is signed and nothing is checked.
 */
import { randomBytes } from 'node:crypto';
import { headers as natsHeaders, type Msg, type MsgHdrs } from 'nats';
import { LatticeAuthError } from '../errors.ts';
import type { LatticeTrust, MemberRole, VerifiedMember } from './membership.ts';
import { verifyBy } from './membership.ts';
import type { NonceCache } from './replay.ts';

export const CRED_HEADER = 'Wasmlet-Cred';
export const AUTH_HEADER = 'Wasmlet-Auth';
const LABEL = 'wasmlet message v1\0';
const encoder = new TextEncoder();

function signingInput(subject: string, reply: string, sent: number, nonce: string, payload: Uint8Array): Buffer {
  const head = encoder.encode(`${LABEL}${subject}\0${reply}\0${sent}\0${nonce}\0`);
  const out = Buffer.allocUnsafe(head.byteLength + payload.byteLength);
  out.set(head, 0);
  out.set(payload, head.byteLength);
  return out;
}

/** Headers that authenticate `payload` published on `subject` (with reply subject `reply`); undefined on an open lattice. */
export function signMessage(trust: LatticeTrust, subject: string, reply: string | undefined, payload: Uint8Array, now = Date.now()): MsgHdrs | undefined {
  const self = trust.self;
  if (!self) return undefined;
  const nonce = randomBytes(12).toString('base64url');
  const sig = trust.sign(signingInput(subject, reply ?? '', now, nonce, payload)).toString('base64url');
  const h = natsHeaders();
  h.set(CRED_HEADER, self.token);
  h.set(AUTH_HEADER, `v1 ${now} ${nonce} ${sig}`);
  return h;
}

function refused(message: string): LatticeAuthError {
  return new LatticeAuthError('MESSAGE_REFUSED', message);
}

export interface VerifyMessageOptions {
  /** Roles allowed to send this message. */
  roles: readonly MemberRole[];
  /** Nonces seen lately (one cache per receiver). */
  nonces: NonceCache;
  /** How far the send time may be from this member's clock, ms. */
  freshnessMs: number;
  now?: number;
}

/**
 * Checks a message received on an authenticated subject: the credential, the role, the
 * signature, freshness and the nonce. Returns the sender; throws LatticeAuthError
 * (MEMBER_REFUSED or MESSAGE_REFUSED) naming the reason. On an open lattice every message passes.
 */
export function verifyMessage(trust: LatticeTrust, m: Pick<Msg, 'subject' | 'reply' | 'data' | 'headers'>, options: VerifyMessageOptions): VerifiedMember | undefined {
  if (trust.insecure) return undefined;
  const now = options.now ?? Date.now();
  const token = m.headers?.get(CRED_HEADER) ?? '';
  const auth = m.headers?.get(AUTH_HEADER) ?? '';
  if (!token || !auth) throw refused('unsigned message on a closed lattice');
  const member = trust.member(token, now);
  if (!options.roles.includes(member.role)) throw new LatticeAuthError('MEMBER_REFUSED', `a ${member.role} (${member.key}) may not send this (only ${options.roles.join(' or ')})`);
  const parts = auth.split(' ');
  if (parts.length !== 4 || parts[0] !== 'v1') throw refused('malformed authentication header');
  const sent = Number(parts[1]);
  const nonce = parts[2]!;
  if (!Number.isSafeInteger(sent) || nonce.length < 8 || nonce.length > 64) throw refused('malformed authentication header');
  if (Math.abs(now - sent) > options.freshnessMs) throw refused(`message sent ${now - sent} ms from this member's clock (over ${options.freshnessMs} ms: stale, replayed or clocks apart)`);
  const sig = Buffer.from(parts[3]!, 'base64url');
  if (!verifyBy(member.key, signingInput(m.subject, m.reply ?? '', sent, nonce, m.data), sig)) throw refused(`signature does not verify against ${member.key}`);
  if (!options.nonces.accept(`${member.key}/${nonce}`, sent + options.freshnessMs + 1, now)) throw refused(`replayed message from ${member.key}`);
  return member;
}
