/**
 * waSCC's extras. GUIDs and random numbers are made in the actor from the engine's
 * `crypto.getRandomValues()`, which reads the host's randomness (`wasi:random`): no link, no
 * claim, no round trip to a provider, and the same entropy source. The sequence needs the host:
 * only the `wasmlet:extras` provider keeps one counter for every instance of the actor, so
 * `extras.sequence()` is a capability call (claimed and linked like any other).
 */
/// <reference path="./world.d.ts" />
import * as raw from 'wasmlet:actor/extras@0.1.0';
import { random } from './clock-random.ts';
import { attempt, err, ok, type Result } from './result.ts';

export interface Extras {
  /** A random (version 4) UUID. */
  guid(): string;
  /** A random integer in [min, max), from the host's cryptographic randomness. */
  random(min: number, max: number): Result<number>;
  /** The next number of this actor's sequence (from 0, monotonic across its instances). */
  sequence(): Result<number>;
}

function randomInt(min: number, max: number): Result<number> {
  if (!Number.isSafeInteger(min) || !Number.isSafeInteger(max) || min >= max || max - min > 2 ** 32) {
    return err({ code: 'bad-request', message: `random(min, max) needs integers with min < max and max - min <= 2^32, got ${min}, ${max}` });
  }
  const range = max - min;
  // Rejection sampling: no bias toward low values.
  const limit = 2 ** 32 - (2 ** 32 % range);
  const word = new Uint32Array(1);
  for (;;) {
    crypto.getRandomValues(word);
    if (word[0]! < limit) return ok(min + (word[0]! % range));
  }
}

function bind(link: string): Extras {
  return {
    guid: () => random.uuid(),
    random: randomInt,
    sequence: () => {
      const r = attempt(() => raw.sequence(link));
      return r.ok ? ok(Number(r.value)) : r;
    },
  };
}

/** Extras; `.link(name)` names the extras link `sequence()` uses. */
export const extras: Extras & { link(name: string): Extras } = Object.assign(bind(''), { link: (name: string) => bind(name) });
