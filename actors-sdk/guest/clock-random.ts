/**
 * Time and randomness. The engine's clock and random imports are kept (WASI clocks and
 * random, served by the host at call time), so these, and `Date.now()`/`Math.random()`, are
 * live values, never the ones frozen when the component was built.
 */

export const clock = {
  /** Wall-clock time. */
  now(): Date {
    return new Date(Date.now());
  },
  /** Milliseconds since the Unix epoch. */
  nowMs(): number {
    return Date.now();
  },
  /** A monotonic time in milliseconds, for measuring durations. */
  monotonicMs(): number {
    return performance.now();
  },
};

function fill(bytes: Uint8Array<ArrayBuffer>): Uint8Array<ArrayBuffer> {
  crypto.getRandomValues(bytes);
  return bytes;
}

export const random = {
  /** `n` cryptographically random bytes. */
  bytes(n: number): Uint8Array {
    return fill(new Uint8Array(n));
  },
  /** A float in [0, 1). */
  float(): number {
    return Math.random();
  },
  /** An integer in [min, max). */
  int(min: number, max: number): number {
    return min + Math.floor(Math.random() * (max - min));
  },
  /** A random (version 4) UUID. */
  uuid(): string {
    const b = fill(new Uint8Array(16));
    b[6] = (b[6]! & 0x0f) | 0x40;
    b[8] = (b[8]! & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  },
};
