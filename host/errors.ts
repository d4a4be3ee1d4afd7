/**
 * Errors of the host part. Every error has a stable `code` (for programs) and keeps the
 * underlying `cause`. Use the `isX(err)` helpers rather than `instanceof` across parts.
 */

export class WasmletError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'WasmletError';
    this.code = code;
  }
}

/** Why an actor was refused at load time. */
export type ClaimsErrorCode =
  | 'CLAIMS_MISSING'
  | 'CLAIMS_MALFORMED'
  | 'CLAIMS_SIGNATURE'
  | 'CLAIMS_HASH'
  | 'CLAIMS_EXPIRED'
  | 'CLAIMS_NOT_YET_VALID'
  | 'CLAIMS_ISSUER_NOT_ALLOWED';

export class ClaimsError extends WasmletError {
  declare readonly code: ClaimsErrorCode;
  constructor(code: ClaimsErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'ClaimsError';
  }
}

/** Why an invocation failed. The actor (or HTTP client) sees these as error values. */
export type InvocationErrorCode =
  | 'DEADLINE_EXCEEDED' // the call overran its deadline; the worker was replaced
  | 'TRAP' // the guest trapped; the instance was discarded
  | 'GUEST_ERROR' // the guest returned an error (waPC __guest_error)
  | 'ACTOR_NOT_FOUND' // no such actor on this host / lattice
  | 'NOT_CLAIMED' // the actor's claims do not include the contract
  | 'NOT_LINKED' // claimed, but no link for (actor, contract, link name)
  | 'NO_PROVIDER' // linked, but no provider serves the contract
  | 'PROVIDER_ERROR' // the provider answered with an error
  | 'BAD_PAYLOAD' // a payload could not be decoded
  | 'UNAVAILABLE' // the transport is down (e.g. NATS disconnected)
  | 'PAYLOAD_TOO_LARGE' // a payload (an actor's response, a host call's) is past its size cap
  | 'STOPPING'; // the actor or host is stopping

export class InvocationError extends WasmletError {
  declare readonly code: InvocationErrorCode;
  constructor(code: InvocationErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'InvocationError';
  }
}

/**
 * A lattice batch authenticated for other hosts only (it carries no MAC for this one): nothing
 * of it may run here. Its items are declined, so that the caller sends them again, signed.
 */
export class BatchNotAddressedError extends WasmletError {
  constructor(
    message: string,
    /** The caller's reply prefix, from the batch. */
    readonly reply: string,
    /** The batch's item ids. */
    readonly ids: string[],
  ) {
    super('ENVELOPE_NOT_ADDRESSED', message);
    this.name = 'BatchNotAddressedError';
  }
}

/** Why a lattice refused a member, a credential or a message. */
export type LatticeAuthErrorCode =
  | 'LATTICE_CREDS_MISSING' // a closed lattice, and no credential was given
  | 'LATTICE_CREDS_INVALID' // a creds file that is unreadable, malformed, expired or not a member's
  | 'MEMBER_FORGED' // a credential that is not signed by this lattice's issuer, or not a credential at all
  | 'MEMBER_REFUSED' // a genuine credential that does not admit the sender here: expired, another lattice, the wrong role
  | 'MESSAGE_REFUSED' // a message that is unsigned, forged, stale or replayed
  | 'LATTICE_ISSUER_EXISTS' // `lattice init` would replace an issuer
  | 'LATTICE_ISSUER_UNREADABLE'; // an issuer directory that cannot be read

export class LatticeAuthError extends WasmletError {
  declare readonly code: LatticeAuthErrorCode;
  constructor(code: LatticeAuthErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'LatticeAuthError';
  }
}

/** Why the lattice dropped a message (counted per reason). */
export type LatticeDropReason = 'malformed' | 'forged' | 'refused' | 'stale' | 'replayed' | 'misrouted' | 'oversized';

/** A lattice batch or reply that is dropped whole: garbled, forged, or from a sender that is not admitted. */
export class EnvelopeError extends WasmletError {
  readonly reason: LatticeDropReason;
  constructor(reason: LatticeDropReason, message: string, options?: { cause?: unknown }) {
    super('ENVELOPE_INVALID', message, options);
    this.name = 'EnvelopeError';
    this.reason = reason;
  }
}

export class ManifestError extends WasmletError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('MANIFEST_INVALID', message, options);
    this.name = 'ManifestError';
  }
}

export class OptionsError extends WasmletError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('OPTIONS_INVALID', message, options);
    this.name = 'OptionsError';
  }
}

export class ActorLoadError extends WasmletError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ACTOR_LOAD_FAILED', message, options);
    this.name = 'ActorLoadError';
  }
}

function hasCode(err: unknown): err is { code: string } {
  return typeof err === 'object' && err !== null && typeof (err as { code?: unknown }).code === 'string';
}

export function isWasmletError(err: unknown): err is WasmletError {
  return err instanceof WasmletError;
}
export function isClaimsError(err: unknown): err is ClaimsError {
  return err instanceof ClaimsError || (hasCode(err) && err.code.startsWith('CLAIMS_'));
}
export function isInvocationError(err: unknown): err is InvocationError {
  return err instanceof InvocationError;
}
export function isBatchNotAddressed(err: unknown): err is BatchNotAddressedError {
  return err instanceof BatchNotAddressedError;
}
export function isLatticeAuthError(err: unknown): err is LatticeAuthError {
  return err instanceof LatticeAuthError;
}
export function isEnvelopeError(err: unknown): err is EnvelopeError {
  return err instanceof EnvelopeError;
}
export function isManifestError(err: unknown): err is ManifestError {
  return err instanceof ManifestError;
}
export function isOptionsError(err: unknown): err is OptionsError {
  return err instanceof OptionsError;
}
export function isActorLoadError(err: unknown): err is ActorLoadError {
  return err instanceof ActorLoadError;
}
