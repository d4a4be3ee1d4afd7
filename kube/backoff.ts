/** Exponential backoff, and sleeping that an AbortSignal cuts short. */

export interface Backoff {
  baseMs: number;
  maxMs: number;
}

/** Delay before retry number `attempt` (0-based): base, 2·base, 4·base… capped at max. */
export function backoffDelay(attempt: number, b: Backoff): number {
  if (attempt <= 0) return b.baseMs;
  // 2^31 overflows nothing in doubles, but keep the exponent small so huge attempt counts stay exact.
  return Math.min(b.maxMs, b.baseMs * 2 ** Math.min(attempt, 30));
}

/** `backoffDelay` with ±20% jitter, so many clients do not retry in step. */
export function jittered(attempt: number, b: Backoff, random = Math.random): number {
  const d = backoffDelay(attempt, b);
  return Math.round(d * (0.8 + 0.4 * random()));
}

/** Resolves after `ms`, or at once (false) when `signal` aborts. True when the time passed. */
export function sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Runs `fn` every `intervalMs` (measured from the end of the previous run, so runs never
 * overlap) until `signal` aborts. Errors go to `onError`; the loop keeps going.
 */
export async function every(intervalMs: number | (() => number), fn: () => Promise<void>, signal: AbortSignal, onError: (err: unknown) => void): Promise<void> {
  while (!signal.aborted) {
    const ok = await sleep(typeof intervalMs === 'number' ? intervalMs : intervalMs(), signal);
    if (!ok) return;
    try {
      await fn();
    } catch (err) {
      onError(err);
    }
  }
}
