/**
 * Runs one task per key however many callers ask for it at once. Each caller waits with its own
 * AbortSignal; the task itself is aborted only when every caller waiting on it has given up.
 */
import { RegistryError } from '../errors.ts';

interface Entry<T> {
  promise: Promise<T>;
  controller: AbortController;
  waiters: number;
}

export class SharedTasks<T> {
  readonly #running = new Map<string, Entry<T>>();

  get size(): number {
    return this.#running.size;
  }

  /** `what` names the task in the ABORTED error a caller gets when its own signal fires. */
  run(key: string, what: string, signal: AbortSignal | undefined, task: (signal: AbortSignal) => Promise<T>): Promise<T> {
    if (signal?.aborted) return Promise.reject(new RegistryError('ABORTED', `${what}: aborted before it started`, { cause: signal.reason }));
    let entry = this.#running.get(key);
    if (!entry) {
      const controller = new AbortController();
      const created: Entry<T> = { controller, waiters: 0, promise: Promise.resolve() as Promise<T> };
      created.promise = (async () => {
        try {
          return await task(controller.signal);
        } finally {
          if (this.#running.get(key) === created) this.#running.delete(key);
        }
      })();
      // Nobody may be waiting when it fails (all aborted): keep that from being unhandled.
      created.promise.catch(() => {});
      this.#running.set(key, created);
      entry = created;
    }
    const shared = entry;
    shared.waiters++;
    if (!signal) return shared.promise.finally(() => void shared.waiters--);
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const onAbort = () => {
        if (settled) return;
        settled = true;
        if (--shared.waiters === 0) {
          if (this.#running.get(key) === shared) this.#running.delete(key);
          shared.controller.abort(signal.reason);
        }
        reject(new RegistryError('ABORTED', `${what}: aborted`, { cause: signal.reason }));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      shared.promise.then(
        (value) => {
          if (settled) return;
          settled = true;
          shared.waiters--;
          signal.removeEventListener('abort', onAbort);
          resolve(value);
        },
        (err: unknown) => {
          if (settled) return;
          settled = true;
          shared.waiters--;
          signal.removeEventListener('abort', onAbort);
          reject(err);
        },
      );
    });
  }
}
