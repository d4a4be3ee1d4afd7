/**
 * The key-value capability (`wasmlet:keyvalue`): every operation of the contract, each
 * returning a Result. `keyvalue` uses the default link; `keyvalue.link(name)` another one.
 */
/// <reference path="./world.d.ts" />
import * as raw from 'wasmlet:actor/keyvalue@0.1.0';
import { attempt, err, type Result } from './result.ts';

export interface KeyValue {
  /** The string at `key`, or undefined when the key does not exist. */
  get(key: string): Result<string | undefined>;
  /** Sets a string; `expiresSeconds` (default 0 = never) makes it expire. */
  set(key: string, value: string, options?: { expiresSeconds?: number }): Result<void>;
  /** Removes a key of any kind. */
  del(key: string): Result<void>;
  /** Adds `delta` (default 1) to the integer at `key` (missing = 0); the new value. */
  add(key: string, delta?: number): Result<number>;
  /** Removes a list. */
  clear(key: string): Result<void>;
  /** List items `start`..`stop` inclusive; negative indices count from the end. */
  range(key: string, start: number, stop: number): Result<string[]>;
  /** Appends to a list; its new length. */
  push(key: string, value: string): Result<number>;
  /** Removes every occurrence of `value` from a list; the remaining length. */
  listItemDelete(key: string, value: string): Result<number>;
  /** Adds a set member; 1 when added, 0 when it was there. */
  setAdd(key: string, value: string): Result<number>;
  /** Removes a set member; 1 when removed, 0 when absent. */
  setRemove(key: string, value: string): Result<number>;
  setUnion(keys: string[]): Result<string[]>;
  setIntersection(keys: string[]): Result<string[]>;
  /** The members of a set. */
  setQuery(key: string): Result<string[]>;
  /** Whether a key of any kind exists. */
  keyExists(key: string): Result<boolean>;
}

const I32_MIN = -(2 ** 31);
const I32_MAX = 2 ** 31 - 1;

function badInt(what: string, n: unknown, min: number, max: number): Result<never> | undefined {
  if (typeof n === 'number' && Number.isInteger(n) && n >= min && n <= max) return undefined;
  return err({ code: 'bad-request', message: `${what} must be an integer from ${min} to ${max}, got ${String(n)}` });
}

function bind(link: string): KeyValue {
  return {
    get: (key) => attempt(() => raw.get(link, key)),
    set: (key, value, options = {}) => {
      const expires = options.expiresSeconds ?? 0;
      return badInt('expiresSeconds', expires, 0, 0xffffffff) ?? attempt(() => raw.set(link, key, value, expires));
    },
    del: (key) => attempt(() => raw.del(link, key)),
    add: (key, delta = 1) => badInt('delta', delta, I32_MIN, I32_MAX) ?? attempt(() => raw.add(link, key, delta)),
    clear: (key) => attempt(() => raw.clear(link, key)),
    range: (key, start, stop) =>
      badInt('start', start, I32_MIN, I32_MAX) ?? badInt('stop', stop, I32_MIN, I32_MAX) ?? attempt(() => raw.range(link, key, start, stop)),
    push: (key, value) => attempt(() => raw.push(link, key, value)),
    listItemDelete: (key, value) => attempt(() => raw.listItemDelete(link, key, value)),
    setAdd: (key, value) => attempt(() => raw.setAdd(link, key, value)),
    setRemove: (key, value) => attempt(() => raw.setRemove(link, key, value)),
    setUnion: (keys) => attempt(() => raw.setUnion(link, keys)),
    setIntersection: (keys) => attempt(() => raw.setIntersection(link, keys)),
    setQuery: (key) => attempt(() => raw.setQuery(link, key)),
    keyExists: (key) => attempt(() => raw.keyExists(link, key)),
  };
}

/** The key-value store of the default link; `.link(name)` for a named link. */
export const keyvalue: KeyValue & { link(name: string): KeyValue } = Object.assign(bind(''), { link: (name: string) => bind(name) });
