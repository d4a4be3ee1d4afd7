/**
 * Lattice membership: who may act on a closed lattice, and how every member checks the others.
 *
 * A lattice is closed by default, in NATS's own operator → account → user manner:
 *
 * - `wasmlet lattice init` makes the lattice's **issuer**: an account nkey (`A…`, seed `SA…`),
 *   plus an operator key and a system account that exist only to write a nats-server
 *   configuration (`nats-config.ts`).
 * - `wasmlet lattice creds` mints a **member credential**: a fresh user nkey (`U…`) and a NATS
 *   user JWT signed by the issuer, naming the lattice and the member's role (host, provider or
 *   ctl) in its tags, with an expiry when asked. It is a standard `.creds` file: the same file
 *   authenticates the member to a nats-server run with the generated configuration (whose
 *   permissions per role are written into the JWT), and to every other member.
 * - A member holds its credential; it trusts the issuer named in it. It accepts a message only
 *   when the sender's credential verifies against that issuer, names the same lattice, has not
 *   expired, and gives a role entitled to send that message; and when the message itself is
 *   signed (or MAC'd) with the key the credential names.
 *
 * A member's host id (`N…`, what inventories and host-addressed control subjects show) is its
 * user key re-encoded with the server prefix: the same Ed25519 key. Lattice signatures are
 * domain-separated (every signed input starts with a label ending in NUL), so nothing a member
 * signs for the lattice can pass for a NATS authentication nonce, nor the reverse.
 *
 * Credentials of other members are verified before they are parsed (the issuer is known in
 * advance: its signature over the first two segments is checked, then they are decoded), are
 * capped at 8 KiB, and are cached once verified.
 */
import { createPrivateKey, createPublicKey, sign as edSign, verify as edVerify, type KeyObject } from 'node:crypto';
import { encodeUser, fmtCreds } from '@nats-io/jwt';
import { encodePublicKey, generateKeyPair, isPublicKey, publicKeyBytes, seedBytes, seedKind, signingKey } from '../claims/keys.ts';
import { LatticeAuthError } from '../errors.ts';
import { rolePermissions } from './nats-config.ts';
import { latticeScope, OPEN_SCOPE, subjectPrefix } from './subjects.ts';

export const MEMBER_ROLES = ['host', 'provider', 'ctl'] as const;
export type MemberRole = (typeof MEMBER_ROLES)[number];

/** A member credential (a JWT) is refused past this size, before anything of it is decoded. */
export const MAX_TOKEN_BYTES = 8192;
const LATTICE_TAG = 'wasmlet-lattice:';
const ROLE_TAG = 'wasmlet-role:';
const NATS_JWT_ALG = 'ed25519-nkey';
const SPKI_ED25519 = Buffer.from('302a300506032b6570032100', 'hex');
const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex');
const BASE64URL = /^[A-Za-z0-9_-]+$/;
const decoder = new TextDecoder('utf-8', { fatal: true });

/** A member whose credential verified: who it is and what it may do. */
export interface VerifiedMember {
  /** The member's user key (`U…`), the JWT's subject. */
  readonly key: string;
  /** The same key as a host id (`N…`). */
  readonly hostId: string;
  readonly role: MemberRole;
  readonly name: string;
  /** ms since the epoch; undefined when the credential does not expire. */
  readonly expires: number | undefined;
  /** The credential as sent (sent along with signed messages). */
  readonly token: string;
}

/** What a member holds: its credential and its seed. */
export interface MemberCredentials extends VerifiedMember {
  readonly lattice: string;
  /** The issuer's account key (`A…`). */
  readonly issuer: string;
  /** The user seed (`SU…`). Keep it out of logs. */
  readonly seed: string;
  /** The whole `.creds` file, as NATS reads it. */
  readonly creds: Uint8Array;
}

function refused(message: string): LatticeAuthError {
  return new LatticeAuthError('MEMBER_REFUSED', message);
}

function forged(message: string): LatticeAuthError {
  return new LatticeAuthError('MEMBER_FORGED', message);
}

function ed25519Key(raw: Uint8Array): KeyObject {
  return createPublicKey({ key: Buffer.concat([SPKI_ED25519, raw]), format: 'der', type: 'spki' });
}

/** An issuer's account key (`A…`) ready to check credentials with. Throws on a key that is not an account's. */
export function issuerKey(issuer: string): { key: string; object: KeyObject } {
  const raw = publicKeyBytes(issuer, 'account');
  if (!raw) throw new LatticeAuthError('LATTICE_CREDS_INVALID', `${issuer.slice(0, 60)} is not an account public key (A…)`);
  return { key: issuer, object: ed25519Key(raw) };
}

/** The host id (`N…`) of a member key (`U…`), or undefined when it is not a user key. */
export function memberHostId(userKey: string): string | undefined {
  const raw = publicKeyBytes(userKey, 'user');
  return raw ? encodePublicKey('server', raw) : undefined;
}

interface TokenClaims {
  iss?: unknown;
  sub?: unknown;
  name?: unknown;
  exp?: unknown;
  nbf?: unknown;
  nats?: { type?: unknown; tags?: unknown };
}

/**
 * Checks a member credential against `issuer` (its public key and parsed key) for `lattice`:
 * the signature first (over the raw segments), then the claims. Throws LatticeAuthError
 * (MEMBER_REFUSED) naming the reason; the reason never echoes more than a key.
 */
export function verifyMemberToken(token: string, issuer: { key: string; object: KeyObject }, lattice: string, now = Date.now()): VerifiedMember {
  if (typeof token !== 'string' || token.length === 0) throw forged('no member credential');
  if (token.length > MAX_TOKEN_BYTES) throw forged(`member credential of ${token.length} bytes (at most ${MAX_TOKEN_BYTES})`);
  const first = token.indexOf('.');
  const second = first < 0 ? -1 : token.indexOf('.', first + 1);
  if (first <= 0 || second <= first + 1 || second === token.length - 1 || token.indexOf('.', second + 1) >= 0) throw forged('member credential is not a JWT (three segments)');
  const signature = token.slice(second + 1);
  if (!BASE64URL.test(signature)) throw forged('member credential signature is not base64url');
  const sig = Buffer.from(signature, 'base64url');
  if (sig.byteLength !== 64) throw forged('member credential signature is not Ed25519');
  let ok = false;
  try {
    ok = edVerify(null, Buffer.from(token.slice(0, second), 'latin1'), issuer.object, sig);
  } catch {
    ok = false;
  }
  if (!ok) throw forged(`member credential is not signed by this lattice's issuer ${issuer.key}`);
  let header: { alg?: unknown };
  let claims: TokenClaims;
  try {
    header = JSON.parse(decoder.decode(Buffer.from(token.slice(0, first), 'base64url'))) as { alg?: unknown };
    claims = JSON.parse(decoder.decode(Buffer.from(token.slice(first + 1, second), 'base64url'))) as TokenClaims;
  } catch {
    throw forged('member credential is not JSON');
  }
  if (header?.alg !== NATS_JWT_ALG) throw forged('member credential is not a NATS JWT (alg ed25519-nkey)');
  if (claims?.iss !== issuer.key) throw refused(`member credential names issuer ${String(claims?.iss).slice(0, 60)}, not ${issuer.key}`);
  if (typeof claims.sub !== 'string' || !isPublicKey(claims.sub, 'user')) throw refused('member credential subject is not a user key (U…)');
  if (claims.nats?.type !== 'user') throw refused('member credential is not a user credential');
  const tags = Array.isArray(claims.nats.tags) ? claims.nats.tags.filter((t): t is string => typeof t === 'string') : [];
  const lattices = tags.filter((t) => t.startsWith(LATTICE_TAG)).map((t) => t.slice(LATTICE_TAG.length));
  if (lattices.length !== 1 || lattices[0] !== lattice) throw refused(`member credential is for lattice ${JSON.stringify(lattices.join(',').slice(0, 64))}, not ${lattice}`);
  const roles = tags.filter((t) => t.startsWith(ROLE_TAG)).map((t) => t.slice(ROLE_TAG.length));
  if (roles.length !== 1 || !(MEMBER_ROLES as readonly string[]).includes(roles[0]!)) throw refused('member credential names no single role (host, provider or ctl)');
  const nowSec = now / 1000;
  const exp = typeof claims.exp === 'number' && claims.exp > 0 ? claims.exp : undefined;
  if (exp !== undefined && nowSec >= exp) throw refused(`member credential of ${claims.sub} expired at ${new Date(exp * 1000).toISOString()}`);
  if (typeof claims.nbf === 'number' && claims.nbf > 0 && nowSec < claims.nbf) throw refused(`member credential of ${claims.sub} is not valid before ${new Date(claims.nbf * 1000).toISOString()}`);
  return {
    key: claims.sub,
    hostId: memberHostId(claims.sub)!,
    role: roles[0] as MemberRole,
    name: typeof claims.name === 'string' ? claims.name.slice(0, 128) : '',
    expires: exp === undefined ? undefined : exp * 1000,
    token,
  };
}

const CREDS_BLOCK = /-{3,}[^\n]*-{3,}\r?\n\s*([^\s-][^\r\n]*)\r?\n\s*-{3,}[^\n]*-{3,}/g;

/**
 * Parses a `.creds` file (as `wasmlet lattice creds` writes it): the JWT, then the user seed. The
 * member trusts the issuer its own credential names; the credential must verify against it, hold
 * this seed's key, and not have expired. Throws LatticeAuthError(LATTICE_CREDS_INVALID).
 */
export function parseMemberCredentials(creds: Uint8Array, now = Date.now()): MemberCredentials {
  const bad = (why: string) => new LatticeAuthError('LATTICE_CREDS_INVALID', `not a usable lattice credential: ${why}`);
  if (creds.byteLength > 4 * MAX_TOKEN_BYTES) throw bad(`${creds.byteLength} bytes is too large for a creds file`);
  let text: string;
  try {
    text = decoder.decode(creds);
  } catch {
    throw bad('not UTF-8 text');
  }
  const blocks = [...text.matchAll(CREDS_BLOCK)].map((m) => m[1]!.trim());
  if (blocks.length < 2) throw bad('expected a JWT block and a seed block');
  const [token, seed] = blocks as [string, string];
  if (seedKind(seed) !== 'user') throw bad('the seed block does not hold a user nkey seed (SU…)');
  const key = signingKey(seed, 'user').publicKey;
  const first = token.indexOf('.');
  let claims: TokenClaims;
  try {
    claims = JSON.parse(decoder.decode(Buffer.from(token.slice(first + 1, token.indexOf('.', first + 1)), 'base64url'))) as TokenClaims;
  } catch {
    throw bad('the JWT block is not a JWT');
  }
  const issuer = typeof claims.iss === 'string' && isPublicKey(claims.iss, 'account') ? claims.iss : undefined;
  if (!issuer) throw bad('the JWT names no account issuer (A…)');
  const tags = Array.isArray(claims.nats?.tags) ? (claims.nats.tags as unknown[]).filter((t): t is string => typeof t === 'string') : [];
  const lattice = tags.find((t) => t.startsWith(LATTICE_TAG))?.slice(LATTICE_TAG.length);
  if (!lattice) throw bad('the JWT names no lattice (not minted by `wasmlet lattice creds`)');
  let member: VerifiedMember;
  try {
    member = verifyMemberToken(token, issuerKey(issuer), lattice, now);
  } catch (err) {
    throw bad((err as Error).message);
  }
  if (member.key !== key) throw bad(`the seed is for ${key}, the JWT for ${member.key}`);
  return { ...member, lattice, issuer, seed, creds };
}

/** A member's signing key: Ed25519 through node:crypto (nkeys.js's pure-JS signer takes milliseconds). */
export function memberSigner(seed: string): (data: Uint8Array) => Buffer {
  const raw = seedBytes(seed);
  if (!raw) throw new LatticeAuthError('LATTICE_CREDS_INVALID', 'not a valid nkey seed');
  const key = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, raw]), format: 'der', type: 'pkcs8' });
  return (data) => edSign(null, data, key);
}

/** Verifies an Ed25519 signature by member `key` (`U…` or `N…`). */
export function verifyBy(key: string, data: Uint8Array, signature: Uint8Array): boolean {
  const raw = publicKeyBytes(key);
  if (!raw || signature.byteLength !== 64) return false;
  try {
    return edVerify(null, data, keyObjectOf(raw, key), signature);
  } catch {
    return false;
  }
}

const keyObjects = new Map<string, KeyObject>();
function keyObjectOf(raw: Uint8Array, key: string): KeyObject {
  let k = keyObjects.get(key);
  if (!k) {
    k = ed25519Key(raw);
    if (keyObjects.size >= 4096) keyObjects.clear();
    keyObjects.set(key, k);
  }
  return k;
}

// ------------------------------------------------------------------------- the trust of a member

/**
 * What one lattice member trusts and who it is. Closed (a credential) or open (`--insecure`).
 * Every lattice part (bus, control, stores) is handed one; none reads credentials itself.
 */
export class LatticeTrust {
  readonly lattice: string;
  /** `open`, or `i` + 16 hex digits of the issuer key's SHA-256. */
  readonly scope: string;
  /** `wasmlet.<lattice>.<scope>`: every subject of the lattice starts with it. */
  readonly prefix: string;
  readonly self: MemberCredentials | undefined;
  readonly #issuer: { key: string; object: KeyObject } | undefined;
  readonly #sign: ((data: Uint8Array) => Buffer) | undefined;
  /** Verified credentials by token, and the latest verified one of each host id. */
  readonly #byToken = new Map<string, VerifiedMember>();
  readonly #byHost = new Map<string, VerifiedMember>();
  readonly #limit: number;

  private constructor(lattice: string, self: MemberCredentials | undefined, limit: number) {
    this.lattice = lattice;
    this.self = self;
    this.#limit = limit;
    if (self) {
      this.#issuer = issuerKey(self.issuer);
      this.#sign = memberSigner(self.seed);
    }
    this.scope = self ? latticeScope(self.issuer) : OPEN_SCOPE;
    this.prefix = subjectPrefix(lattice, this.scope);
  }

  /** A closed lattice member holding `credentials`. */
  static closed(credentials: MemberCredentials, options: { cacheLimit?: number } = {}): LatticeTrust {
    return new LatticeTrust(credentials.lattice, credentials, options.cacheLimit ?? 4096);
  }

  /** An open lattice (`--insecure`): nothing is authenticated. For development only. */
  static insecure(lattice: string): LatticeTrust {
    return new LatticeTrust(lattice, undefined, 0);
  }

  get insecure(): boolean {
    return this.self === undefined;
  }

  /** The issuer's account key; undefined on an open lattice. */
  get issuer(): string | undefined {
    return this.#issuer?.key;
  }

  /** Signs `data` with this member's key. Throws on an open lattice. */
  sign(data: Uint8Array): Buffer {
    if (!this.#sign) throw new LatticeAuthError('LATTICE_CREDS_MISSING', 'an open lattice member has no key to sign with');
    return this.#sign(data);
  }

  /**
   * Verifies another member's credential (cached by token; expiry is checked on every use).
   * Throws LatticeAuthError(MEMBER_REFUSED).
   */
  member(token: string, now = Date.now()): VerifiedMember {
    if (!this.#issuer) throw refused('an open lattice member cannot check credentials');
    const cached = this.#byToken.get(token);
    if (cached) {
      if (cached.expires !== undefined && now >= cached.expires) throw refused(`member credential of ${cached.key} expired at ${new Date(cached.expires).toISOString()}`);
      return cached;
    }
    const m = verifyMemberToken(token, this.#issuer, this.lattice, now);
    if (this.#byToken.size >= this.#limit) {
      this.#byToken.clear();
      this.#byHost.clear();
    }
    this.#byToken.set(token, m);
    this.#byHost.set(m.hostId, m);
    return m;
  }

  /** A member this one has verified a credential of, by host id, while it has not expired. */
  known(hostId: string, now = Date.now()): VerifiedMember | undefined {
    const m = this.#byHost.get(hostId);
    if (!m) return undefined;
    if (m.expires !== undefined && now >= m.expires) {
      this.#byHost.delete(hostId);
      return undefined;
    }
    return m;
  }
}

// ------------------------------------------------------------------------- the issuer's side

export interface IssuerKeys {
  lattice: string;
  /** Account seed (`SA…`) that signs member credentials. */
  issuerSeed: string;
  issuer: string;
}

export interface MintOptions {
  role: MemberRole;
  /** Shown in logs and inventories. Default: the role. */
  name?: string;
  /** Seconds until the credential expires; undefined: it does not. */
  expiresInSeconds?: number;
  now?: number;
}

/** Mints a member credential (a `.creds` file's bytes) for a fresh user key. */
export async function mintMemberCredentials(issuer: IssuerKeys, options: MintOptions): Promise<MemberCredentials> {
  if (!(MEMBER_ROLES as readonly string[]).includes(options.role)) throw new LatticeAuthError('LATTICE_CREDS_INVALID', `unknown role ${JSON.stringify(options.role)} (host, provider or ctl)`);
  if (seedKind(issuer.issuerSeed) !== 'account') throw new LatticeAuthError('LATTICE_CREDS_INVALID', 'the issuer key must be an account nkey seed (SA…)');
  const user = generateKeyPair('user');
  const now = options.now ?? Date.now();
  const scope = latticeScope(issuer.issuer);
  const permissions = rolePermissions(options.role, issuer.lattice, scope);
  const token = await encodeUser(options.name ?? options.role, user.seed, issuer.issuerSeed, { ...permissions, tags: [`${LATTICE_TAG}${issuer.lattice}`, `${ROLE_TAG}${options.role}`] }, {
    ...(options.expiresInSeconds !== undefined ? { exp: Math.floor(now / 1000) + options.expiresInSeconds } : {}),
  });
  const creds = fmtCreds(token, { getSeed: () => new TextEncoder().encode(user.seed) } as Parameters<typeof fmtCreds>[1]);
  return parseMemberCredentials(creds, now);
}

export { OPEN_SCOPE };
