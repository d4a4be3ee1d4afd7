/**
 * Errors as values: every capability call returns a `Result` instead of throwing, because a
 * failed call (no link, a key of the wrong kind, a deadline) is something an actor answers,
 * not a crash.
 */

/** Why a capability call failed (see `code` in the WIT world's `types.error`). */
export interface CapabilityError {
  code: 'not-claimed' | 'not-linked' | 'timeout' | 'bad-request' | 'unavailable' | 'failed' | (string & {});
  message: string;
}

export type Result<T, E = CapabilityError> = { ok: true; value: T } | { ok: false; error: E };

export function ok<T>(value: T): Result<T, never> {
  return { ok: true, value };
}

export function err<E = CapabilityError>(error: E): Result<never, E> {
  return { ok: false, error };
}

/**
 * An error the actor answers on purpose: the HTTP server replies 500 with this message in the
 * host's logs, and the instance (with its state) is kept. Any other exception is a crash: the
 * host discards the instance and answers 500 too.
 */
export class ActorError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ActorError';
  }
}

/** The value of an ok result; for an error, throws ActorError naming `what` failed. */
export function unwrap<T>(result: Result<T>, what = 'capability call'): T {
  if (result.ok) return result.value;
  throw new ActorError(`${what} failed (${result.error.code}): ${result.error.message}`);
}

/** Runs a raw import: its thrown ComponentError (payload = the WIT error) becomes an error value. */
export function attempt<T>(call: () => T): Result<T> {
  try {
    return { ok: true, value: call() };
  } catch (e) {
    return { ok: false, error: toCapabilityError(e) };
  }
}

export function toCapabilityError(e: unknown): CapabilityError {
  const payload = (e as { payload?: unknown } | null)?.payload;
  if (payload && typeof payload === 'object' && typeof (payload as CapabilityError).message === 'string') {
    const p = payload as CapabilityError;
    return { code: typeof p.code === 'string' ? p.code : 'failed', message: p.message };
  }
  // A TypeError from lowering bad arguments, for one.
  return { code: 'bad-request', message: e instanceof Error ? e.message : String(e) };
}
