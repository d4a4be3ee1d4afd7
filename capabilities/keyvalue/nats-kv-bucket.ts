/**
 * The storage layer of the NATS KV key-value backend (see nats-store.ts): the value documents,
 * and a bucket handle that applies changes with compare-and-set on the entry revision.
 */
import { StorageType, type KV, type KvEntry, type NatsConnection } from 'nats';
import { connectionState, type ConnectionState } from '../../host/index.ts';
import { backendError } from './store.ts';

export type Kind = 's' | 'l' | 'z';

/** A decoded entry. `v` is a string for `s`, an array for `l` and `z`. */
export interface Value {
  t: Kind;
  v: string | string[];
  /** Expiry, ms since the epoch. */
  x?: number;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

function parseValue(bytes: Uint8Array): Value {
  const text = dec.decode(bytes);
  if (text.startsWith('{"t":')) {
    try {
      const v = JSON.parse(text) as Value;
      const okKind = v.t === 's' ? typeof v.v === 'string' : (v.t === 'l' || v.t === 'z') && Array.isArray(v.v);
      if (okKind && (v.x === undefined || typeof v.x === 'number')) return v;
    } catch {
      // not ours: a plain string
    }
  }
  return { t: 's', v: text };
}

function serialise(v: Value): Uint8Array {
  return enc.encode(JSON.stringify(v));
}

/** Redis's integer syntax: no sign on zero, no leading zeros, no spaces or `+`. */
const INTEGER = /^(?:0|-?[1-9][0-9]*)$/;

export function parseInteger(text: string): number | undefined {
  if (text.length > 20 || !INTEGER.test(text)) return undefined;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : undefined;
}

export function isWrongSequence(err: unknown): boolean {
  const e = err as { api_error?: { err_code?: number }; message?: string };
  return e?.api_error?.err_code === 10071 || /wrong last sequence/i.test(e?.message ?? '');
}

/** What a change decides: write `next` (null = delete the key, undefined = leave it) and answer `result`. */
export interface Change<T> {
  next: Value | null | undefined;
  result: T;
}

/** One bucket on one connection, shared by every store (link) that names it. */
export class Bucket {
  readonly kv: KV;
  readonly maxRetries: number;
  readonly state: ConnectionState;
  /** Per key: the tail of the queue of changes from this process. */
  readonly #queues = new Map<string, Promise<unknown>>();
  /** Per key: the last revision and value this process wrote (a guess for the next change). */
  readonly #known = new Map<string, { rev: number; value: Value }>();

  constructor(nc: NatsConnection, kv: KV, maxRetries: number) {
    this.kv = kv;
    this.maxRetries = maxRetries;
    this.state = connectionState(nc);
  }

  /** Current value (undefined when missing or expired) of encoded key `ek`. */
  async read(ek: string): Promise<Value | undefined> {
    const e = await this.kv.get(ek);
    return live(e);
  }

  /** Runs `decide` on the current value and writes its outcome with compare-and-set, retrying on conflict. */
  change<T>(op: string, key: string, ek: string, decide: (cur: Value | undefined) => Change<T>): Promise<T> {
    const previous = this.#queues.get(ek) ?? Promise.resolve();
    const run = previous.then(
      () => this.#change(op, key, ek, decide),
      () => this.#change(op, key, ek, decide),
    );
    this.#queues.set(ek, run);
    void run.finally(() => {
      if (this.#queues.get(ek) === run) this.#queues.delete(ek);
    }).catch(() => undefined);
    return run;
  }

  async #change<T>(op: string, key: string, ek: string, decide: (cur: Value | undefined) => Change<T>): Promise<T> {
    let guess = this.#known.get(ek);
    for (let attempt = 0; attempt <= this.maxRetries; attempt++) {
      let rev: number;
      let cur: Value | undefined;
      let present: boolean;
      const fromGuess = guess !== undefined;
      if (guess) {
        rev = guess.rev;
        cur = guess.value.x !== undefined && guess.value.x <= Date.now() ? undefined : guess.value;
        present = true;
        guess = undefined;
      } else {
        const e = await this.kv.get(ek);
        rev = e?.revision ?? 0;
        present = e?.operation === 'PUT';
        cur = live(e);
      }
      let outcome: Change<T>;
      try {
        outcome = decide(cur);
      } catch (err) {
        // A guess may be stale: only a fresh read may turn a call down.
        if (fromGuess) continue;
        throw err;
      }
      if (outcome.next === undefined || (outcome.next === null && !present)) {
        if (fromGuess) continue; // confirm "nothing to do" against the stored value
        return outcome.result;
      }
      try {
        if (outcome.next === null) {
          await this.kv.delete(ek, { previousSeq: rev });
          this.#known.delete(ek);
        } else {
          const newRev = await this.kv.put(ek, serialise(outcome.next), { previousSeq: rev });
          this.#remember(ek, newRev, outcome.next);
        }
        return outcome.result;
      } catch (err) {
        this.#known.delete(ek);
        if (isWrongSequence(err)) continue;
        throw err;
      }
    }
    throw backendError(op, `${JSON.stringify(key)} changed concurrently ${this.maxRetries + 1} times in a row; giving up`);
  }

  #remember(ek: string, rev: number, value: Value): void {
    // A bounded guess cache: dropping it costs one extra read, never correctness.
    if (this.#known.size >= 10_000) this.#known.clear();
    this.#known.set(ek, { rev, value });
  }

  /** An unconditional write (Set), through the key's queue. */
  overwrite(ek: string, value: Value): Promise<void> {
    const previous = this.#queues.get(ek) ?? Promise.resolve();
    const write = async () => {
      const rev = await this.kv.put(ek, serialise(value));
      this.#remember(ek, rev, value);
    };
    const run = previous.then(write, write);
    this.#queues.set(ek, run);
    void run.finally(() => {
      if (this.#queues.get(ek) === run) this.#queues.delete(ek);
    }).catch(() => undefined);
    return run;
  }
}

export function live(e: KvEntry | null): Value | undefined {
  if (!e || e.operation !== 'PUT') return undefined;
  const v = parseValue(e.value);
  if (v.x !== undefined && v.x <= Date.now()) return undefined;
  return v;
}

export async function openKv(nc: NatsConnection, bucket: string, replicas: number, timeoutMs: number): Promise<KV> {
  return nc.jetstream({ timeout: timeoutMs }).views.kv(bucket, { history: 1, storage: StorageType.File, replicas, timeout: timeoutMs });
}
