/**
 * Signed actors, in waSCC's format: a JWT in the custom section `jwt` (older tools: `wasmcloud_jwt`)
 * whose `wascap.hash` is the SHA-256 of the binary without that section. Reading, checking
 * (each check reported on its own, for `claims inspect`), refusing (`verifyActor`) and signing.
 */
import { createHash, randomBytes } from 'node:crypto';
import { z } from 'zod';
import { ClaimsError, OptionsError, isWasmletError, type ClaimsErrorCode } from '../errors.ts';
import type { ActorClaims } from '../types.ts';
import { encodeJwt, issuerCandidates, MAX_TOKEN_BYTES, parseJwtClaims, splitJwt, verifyJwtSignature, type SplitJwt } from './jwt.ts';
import { generateKeyPair, isPublicKey, signingKey } from './keys.ts';
import { appendCustomSection, keptRanges, listCustomSections, stripCustomSections } from './wasm-sections.ts';

export const JWT_SECTION = 'jwt';
export const LEGACY_JWT_SECTION = 'wasmcloud_jwt';
/** Every section that may hold claims; all are left out of the module hash. */
export const CLAIMS_SECTIONS: readonly string[] = [JWT_SECTION, LEGACY_JWT_SECTION];

export interface ActorToken {
  token: string;
  claims: ActorClaims;
  /** The section the token was read from. */
  section: string;
}

export interface VerifyOptions {
  /** Allowed issuers (account keys). Empty or undefined: any issuer. */
  issuers?: string[];
  /** The current time in seconds since the epoch. Default: `Date.now() / 1000`. */
  now?: number;
  /** Leeway for `exp` and `nbf`, in seconds. Default 0. */
  clockSkewSeconds?: number;
}

export interface VerifiedActor {
  claims: ActorClaims;
  token: string;
  /** The hash computed from the binary (equal to `claims.wascap.hash`). */
  hash: string;
  /** The module key (`M…`): the actor's identity. */
  subject: string;
  /** The account key (`A…`) that signed it. */
  issuer: string;
}

export type ActorCheckName = 'keys' | 'signature' | 'hash' | 'expiry' | 'not-before' | 'issuer';

export interface ActorCheck {
  name: ActorCheckName;
  ok: boolean;
  /** When not ok: the refusal code and the reason in plain words. */
  code?: ClaimsErrorCode;
  reason?: string;
}

export interface ActorInspection extends ActorToken {
  /** The hash computed from the binary. */
  hash: string;
  /** In the order `verifyActor` applies them. */
  checks: ActorCheck[];
}

export interface SignActorOptions {
  /** Seed of the signing account (`SA…`); its public key becomes `iss`. */
  account: string;
  /** Seed of the module key (`SM…`); its public key becomes `sub`. Default: a new key. */
  module?: string;
  name: string;
  /** Capability contract ids the actor may call. */
  caps: string[];
  tags?: string[];
  rev?: number;
  ver?: string;
  /** `exp`, in seconds since the epoch. Default: never expires. */
  expiresAt?: number;
  /** `nbf`, in seconds since the epoch. Default: valid at once. */
  notBefore?: number;
  /** `iat`, in seconds since the epoch. Default: now. */
  now?: number;
}

export interface SignedActor {
  /** The signed binary. */
  bytes: Uint8Array<ArrayBuffer>;
  token: string;
  claims: ActorClaims;
}

function zodMessage(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.length ? i.path.join('.') : 'value'}: ${i.message}`).join('; ');
}

const accountKey = z.string().refine((k) => isPublicKey(k, 'account'), 'not an account public key (A…)');

const verifyOptionsSchema = z.strictObject({
  issuers: z.array(accountKey).optional(),
  now: z.number().finite().nonnegative().optional(),
  clockSkewSeconds: z.number().finite().nonnegative().optional(),
});

/** Validates VerifyOptions. Throws OptionsError. */
export function parseVerifyOptions(input: unknown = {}): VerifyOptions {
  const parsed = verifyOptionsSchema.safeParse(input);
  if (!parsed.success) throw new OptionsError(`invalid verify options: ${zodMessage(parsed.error)}`, { cause: parsed.error });
  return parsed.data;
}

const seconds = z.number().int().nonnegative();
const signOptionsSchema = z
  .strictObject({
    account: z.string(),
    module: z.string().optional(),
    name: z.string().trim().min(1),
    caps: z.array(z.string().trim().min(1)),
    tags: z.array(z.string().trim().min(1)).optional(),
    rev: z.number().int().nonnegative().optional(),
    ver: z.string().trim().min(1).optional(),
    expiresAt: seconds.optional(),
    notBefore: seconds.optional(),
    now: z.number().finite().nonnegative().optional(),
  })
  .refine((o) => o.expiresAt === undefined || o.notBefore === undefined || o.expiresAt > o.notBefore, {
    message: 'expiresAt must be after notBefore',
    path: ['expiresAt'],
  });

/** Validates SignActorOptions (seeds are checked by `signActor`). Throws OptionsError. */
export function parseSignActorOptions(input: unknown): SignActorOptions {
  const parsed = signOptionsSchema.safeParse(input);
  if (!parsed.success) throw new OptionsError(`invalid sign options: ${zodMessage(parsed.error)}`, { cause: parsed.error });
  return parsed.data;
}

const claimsSchema = z.looseObject({
  jti: z.string(),
  iat: z.number().finite(),
  iss: z.string(),
  sub: z.string(),
  exp: z.number().finite().optional(),
  nbf: z.number().finite().optional(),
  wascap: z.looseObject({
    name: z.string().optional(),
    hash: z.string().regex(/^[0-9A-Fa-f]{64}$/, 'not a hex SHA-256'),
    tags: z.array(z.string()).optional(),
    caps: z.array(z.string()).optional(),
    rev: z.number().int().optional(),
    ver: z.string().optional(),
    prov: z.boolean().optional(),
  }),
});

/** Serde's `Option` may come out as null: treat it as absent. */
function dropNulls(value: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== null));
}

/** The largest claims section accepted (the token's own limit): it is refused before it is copied or decoded. */
export const MAX_CLAIMS_SECTION_BYTES = MAX_TOKEN_BYTES;

interface RawToken {
  token: string;
  section: string;
  split: SplitJwt;
}

/**
 * The claims section's token, split and size-checked but with its claims not parsed. Throws
 * ClaimsError(CLAIMS_MISSING) when unsigned, ClaimsError(CLAIMS_MALFORMED) when unreadable or too large.
 */
function readToken(bytes: Uint8Array): RawToken {
  let found: { name: string; dataStart: number; end: number } | undefined;
  try {
    const sections = listCustomSections(bytes);
    found = sections.find((s) => s.name === JWT_SECTION) ?? sections.find((s) => s.name === LEGACY_JWT_SECTION);
  } catch (err) {
    const why = isWasmletError(err) ? err.message : `malformed WebAssembly binary: ${(err as Error).message}`;
    throw new ClaimsError('CLAIMS_MALFORMED', why, { cause: err });
  }
  if (!found) {
    throw new ClaimsError('CLAIMS_MISSING', `not signed: no "${JWT_SECTION}" or "${LEGACY_JWT_SECTION}" custom section holds claims`);
  }
  const section = found.name;
  const size = found.end - found.dataStart;
  if (size > MAX_CLAIMS_SECTION_BYTES) {
    throw new ClaimsError('CLAIMS_MALFORMED', `malformed claims token: section "${section}" is ${size} bytes, over the limit of ${MAX_CLAIMS_SECTION_BYTES} (real claims are a few hundred bytes)`);
  }
  let token: string;
  try {
    token = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(found.dataStart, found.end)).trim();
  } catch (err) {
    throw new ClaimsError('CLAIMS_MALFORMED', `malformed claims token: section "${section}" is not UTF-8 text`, { cause: err });
  }
  return { token, section, split: splitJwt(token) };
}

/** Parses and validates the claims of a token (once). Throws ClaimsError(CLAIMS_MALFORMED). */
function claimsOf(raw: RawToken): ActorClaims {
  const decoded = dropNulls(parseJwtClaims(raw.split).claims);
  if (decoded.wascap && typeof decoded.wascap === 'object' && !Array.isArray(decoded.wascap)) {
    decoded.wascap = dropNulls(decoded.wascap as Record<string, unknown>);
  }
  const parsed = claimsSchema.safeParse(decoded);
  if (!parsed.success) {
    throw new ClaimsError('CLAIMS_MALFORMED', `malformed claims: ${zodMessage(parsed.error)}`, { cause: parsed.error });
  }
  return parsed.data as ActorClaims;
}

/**
 * The token and claims of a signed module or component, not yet checked. Throws
 * ClaimsError(CLAIMS_MISSING) when unsigned, ClaimsError(CLAIMS_MALFORMED) when unreadable.
 */
export function readClaims(bytes: Uint8Array): ActorToken {
  const raw = readToken(bytes);
  return { token: raw.token, claims: claimsOf(raw), section: raw.section };
}

/**
 * The issuer key whose signature the token carries, checked before its claims are parsed: the
 * `iss` values found in the claims text are tried in turn. Throws ClaimsError naming why none fits.
 */
function verifiedIssuer(raw: RawToken): string {
  const candidates = issuerCandidates(raw.split);
  if (candidates.length === 0) throw new ClaimsError('CLAIMS_MALFORMED', 'malformed claims: iss: no issuer account key in the claims');
  const keys = candidates.filter((c) => isPublicKey(c, 'account'));
  if (keys.length === 0) {
    throw new ClaimsError('CLAIMS_MALFORMED', `issuer ${JSON.stringify(candidates[0])} is not a valid account key (A…)`);
  }
  const key = keys.find((k) => verifyJwtSignature(raw.split, k));
  if (key === undefined) {
    throw new ClaimsError('CLAIMS_SIGNATURE', `signature does not verify with the issuer's key ${keys[0]}: the token was not signed by its issuer (forged or altered)`);
  }
  return key;
}

/** Uppercase hex SHA-256 of the binary without its claims sections (other bytes as they are). */
export function computeModuleHash(bytes: Uint8Array): string {
  const hash = createHash('sha256');
  for (const [a, b] of keptRanges(bytes, CLAIMS_SECTIONS)) hash.update(bytes.subarray(a, b));
  return hash.digest('hex').toUpperCase();
}

function iso(secondsSinceEpoch: number): string {
  const date = new Date(secondsSinceEpoch * 1000);
  return Number.isNaN(date.getTime()) ? String(secondsSinceEpoch) : date.toISOString();
}

function check(name: ActorCheckName, failure?: { code: ClaimsErrorCode; reason: string }): ActorCheck {
  return failure ? { name, ok: false, ...failure } : { name, ok: true };
}

/**
 * Reads the claims and runs every check, reporting each rather than stopping at the first.
 * Throws only when there are no readable claims (CLAIMS_MISSING / CLAIMS_MALFORMED).
 */
export function inspectActor(bytes: Uint8Array, options: VerifyOptions = {}): ActorInspection {
  const opts = parseVerifyOptions(options);
  const raw = readToken(bytes);
  const claims = claimsOf(raw);
  const read: ActorToken = { token: raw.token, claims, section: raw.section };
  const issuerOk = isPublicKey(claims.iss, 'account');
  const subjectOk = isPublicKey(claims.sub, 'module');
  const checks: ActorCheck[] = [];

  const keyProblems = [
    issuerOk ? undefined : `issuer ${JSON.stringify(claims.iss)} is not a valid account key (A…)`,
    subjectOk ? undefined : `subject ${JSON.stringify(claims.sub)} is not a valid module key (M…)`,
  ].filter((p): p is string => p !== undefined);
  checks.push(check('keys', keyProblems.length ? { code: 'CLAIMS_MALFORMED', reason: keyProblems.join('; ') } : undefined));

  let signatureFailure: string | undefined;
  if (!issuerOk) signatureFailure = 'cannot be checked: the issuer is not a valid account key';
  else if (!verifyJwtSignature(raw.split, claims.iss)) {
    signatureFailure = `signature does not verify with the issuer's key ${claims.iss}: the token was not signed by its issuer (forged or altered)`;
  }
  checks.push(check('signature', signatureFailure ? { code: 'CLAIMS_SIGNATURE', reason: signatureFailure } : undefined));

  const content = contentChecks(bytes, claims, opts);
  checks.push(...content.checks);
  return { ...read, hash: content.hash, checks };
}

/** The checks after keys and signature, in order: hash, expiry, not-before, issuer allow-list. */
function contentChecks(bytes: Uint8Array, claims: ActorClaims, opts: VerifyOptions): { hash: string; checks: ActorCheck[] } {
  const now = opts.now ?? Date.now() / 1000;
  const skew = opts.clockSkewSeconds ?? 0;
  const hash = computeModuleHash(bytes);
  const checks: ActorCheck[] = [];
  const claimed = claims.wascap.hash.toUpperCase();
  checks.push(
    check(
      'hash',
      claimed === hash
        ? undefined
        : { code: 'CLAIMS_HASH', reason: `module hash mismatch (claims say ${claimed}, module is ${hash}): the module was changed after signing` },
    ),
  );

  checks.push(
    check(
      'expiry',
      claims.exp !== undefined && now >= claims.exp + skew
        ? { code: 'CLAIMS_EXPIRED', reason: `claims expired at ${iso(claims.exp)} (now ${iso(now)})` }
        : undefined,
    ),
  );
  checks.push(
    check(
      'not-before',
      claims.nbf !== undefined && now + skew < claims.nbf
        ? { code: 'CLAIMS_NOT_YET_VALID', reason: `claims are not valid before ${iso(claims.nbf)} (now ${iso(now)})` }
        : undefined,
    ),
  );

  if (opts.issuers?.length) {
    const allowed = opts.issuers.includes(claims.iss);
    checks.push(
      check(
        'issuer',
        allowed
          ? undefined
          : { code: 'CLAIMS_ISSUER_NOT_ALLOWED', reason: `issuer ${claims.iss} is not in the allowed issuers (${opts.issuers.join(', ')})` },
      ),
    );
  }
  return { hash, checks };
}

function refusedPrefix(claims?: ActorClaims): string {
  if (!claims) return 'actor refused';
  return claims.wascap.name ? `actor ${claims.sub} (${JSON.stringify(claims.wascap.name)}) refused` : `actor ${claims.sub} refused`;
}

/**
 * Checks an actor before it is loaded: signature by `iss`, hash of the binary, `exp`/`nbf`,
 * issuer allow-list. Throws ClaimsError naming the first reason to refuse it.
 */
export function verifyActor(bytes: Uint8Array, options: VerifyOptions = {}): VerifiedActor {
  const opts = parseVerifyOptions(options);
  let raw: RawToken;
  let claims: ActorClaims;
  try {
    raw = readToken(bytes);
    // The signature first: nothing in the claims is parsed before its issuer's key verified them.
    const issuer = verifiedIssuer(raw);
    claims = claimsOf(raw);
    if (claims.iss !== issuer) {
      throw new ClaimsError('CLAIMS_SIGNATURE', `the token is signed by ${issuer} but its claims name the issuer ${JSON.stringify(claims.iss)}`);
    }
  } catch (err) {
    if (err instanceof ClaimsError) throw new ClaimsError(err.code, `${refusedPrefix()}: ${err.message}`, { cause: err });
    throw err;
  }
  const refuse = (code: ClaimsErrorCode, reason: string): never => {
    throw new ClaimsError(code, `${refusedPrefix(claims)}: ${reason}`);
  };
  if (!isPublicKey(claims.sub, 'module')) refuse('CLAIMS_MALFORMED', `subject ${JSON.stringify(claims.sub)} is not a valid module key (M…)`);
  const { hash, checks } = contentChecks(bytes, claims, opts);
  const failed = checks.find((c) => !c.ok);
  if (failed) refuse(failed.code!, failed.reason!);
  return { claims, token: raw.token, hash, subject: claims.sub, issuer: claims.iss };
}

/** A random token id (22 url-safe characters, like waSCC's nuid). */
function newJti(): string {
  return randomBytes(16).toString('base64url');
}

/**
 * Signs a module or component: removes any existing claims sections, then appends a `jwt`
 * section with fresh claims (`iat` now, random `jti`, `hash` of the result, `prov: false`).
 * Throws OptionsError on bad options or seeds (without echoing seeds).
 */
export function signActor(bytes: Uint8Array, options: SignActorOptions): SignedActor {
  const opts = parseSignActorOptions(options);
  const account = keyOption(opts.account, 'account');
  const module = opts.module === undefined ? undefined : keyOption(opts.module, 'module');
  // Without a module seed the new key's seed is dropped: the actor cannot be re-signed as the same identity.
  const subject = module ? module.publicKey : generateKeyPair('module').publicKey;
  const stripped = stripCustomSections(bytes, CLAIMS_SECTIONS);
  const hash = createHash('sha256').update(stripped).digest('hex').toUpperCase();
  const claims: ActorClaims = {
    jti: newJti(),
    iat: Math.floor(opts.now ?? Date.now() / 1000),
    iss: account.publicKey,
    sub: subject,
    ...(opts.expiresAt !== undefined ? { exp: opts.expiresAt } : {}),
    ...(opts.notBefore !== undefined ? { nbf: opts.notBefore } : {}),
    wascap: {
      name: opts.name,
      hash,
      tags: opts.tags ?? [],
      caps: opts.caps,
      ...(opts.rev !== undefined ? { rev: opts.rev } : {}),
      ...(opts.ver !== undefined ? { ver: opts.ver } : {}),
      prov: false,
    },
  };
  const token = encodeJwt(claims, opts.account.trim());
  return { bytes: appendCustomSection(stripped, JWT_SECTION, token), token, claims };
}

function keyOption(seed: string, kind: 'account' | 'module'): { publicKey: string } {
  try {
    return { publicKey: signingKey(seed, kind).publicKey };
  } catch (err) {
    if (isWasmletError(err)) throw new OptionsError(`invalid sign options: ${kind}: ${err.message}`, { cause: err });
    throw err;
  }
}
