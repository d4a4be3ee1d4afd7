/** The actor's configuration values (manifest `config`, pod env vars). */
/// <reference path="./world.d.ts" />
import * as raw from 'wasmlet:actor/config@0.1.0';

export const config = {
  /** A value, or undefined when not set. */
  get(key: string): string | undefined {
    return raw.get(key);
  },
  /** A value, or `fallback` when not set. */
  getOr(key: string, fallback: string): string {
    return raw.get(key) ?? fallback;
  },
  /** Every value. */
  all(): Record<string, string> {
    return Object.fromEntries(raw.getAll());
  },
};
