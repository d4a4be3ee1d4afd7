/**
 * Writes pod statuses to the API: the latest status per pod wins (intermediate ones are skipped
 * when writes lag), a bounded number of writes run at once, and a write that fails (API down) is
 * tried again until it lands. The patch names the pod's uid, so a status never lands on a newer
 * pod of the same name.
 */
import type { Logger } from 'pino';
import { apiErrorText, apiStatus, mergePatch, type KubeClients } from './kube-client.ts';
import { Limiter } from './limiter.ts';
import type { PodStatusBody } from './pod-status.ts';

export interface PodRef {
  namespace: string;
  name: string;
  uid: string;
}

interface Entry {
  ref: PodRef;
  status: PodStatusBody;
  version: number;
  written: number;
  writing: boolean;
  retry: NodeJS.Timeout | undefined;
  waiters: (() => void)[];
}

export class PodStatusWriter {
  readonly #entries = new Map<string, Entry>();
  readonly #limiter: Limiter;
  #stopped = false;
  /** Status writes that reached the API server. */
  writes = 0;

  constructor(
    private readonly clients: KubeClients,
    private readonly options: { concurrency: number; retryMs: number; logger: Logger },
  ) {
    this.#limiter = new Limiter(options.concurrency);
  }

  /** Queues `status` as the pod's status (replacing any not yet written). */
  set(ref: PodRef, status: PodStatusBody): void {
    if (this.#stopped) return;
    let e = this.#entries.get(ref.uid);
    if (!e) {
      e = { ref, status, version: 0, written: 0, writing: false, retry: undefined, waiters: [] };
      this.#entries.set(ref.uid, e);
    }
    e.status = status;
    e.version++;
    this.#pump(e);
  }

  /** Resolves once the latest status of the pod was written (or the pod was forgotten). */
  flushed(uid: string): Promise<void> {
    const e = this.#entries.get(uid);
    if (!e || e.written === e.version) return Promise.resolve();
    return new Promise((resolve) => e.waiters.push(resolve));
  }

  /** Stops writing for this pod (it is gone). */
  forget(uid: string): void {
    const e = this.#entries.get(uid);
    if (!e) return;
    clearTimeout(e.retry);
    this.#entries.delete(uid);
    for (const w of e.waiters.splice(0)) w();
  }

  /** Writes what is pending again at once (e.g. after the API came back). */
  retryNow(): void {
    for (const e of this.#entries.values()) {
      if (e.retry) {
        clearTimeout(e.retry);
        e.retry = undefined;
      }
      this.#pump(e);
    }
  }

  stop(): void {
    this.#stopped = true;
    for (const uid of [...this.#entries.keys()]) this.forget(uid);
  }

  #pump(e: Entry): void {
    if (e.writing || e.retry || e.written === e.version || this.#stopped) return;
    e.writing = true;
    const version = e.version;
    const status = e.status;
    void this.#limiter
      .run(() =>
        this.clients.core.patchNamespacedPodStatus(
          { name: e.ref.name, namespace: e.ref.namespace, body: { metadata: { uid: e.ref.uid }, status } },
          mergePatch,
        ),
      )
      .then(
        () => {
          this.writes++;
          e.writing = false;
          e.written = Math.max(e.written, version);
          if (e.written === e.version) for (const w of e.waiters.splice(0)) w();
          else this.#pump(e);
        },
        (err: unknown) => {
          e.writing = false;
          const status = apiStatus(err);
          if (status === 404 || status === 409) {
            // The pod is gone, or its name now belongs to another pod: nothing to write.
            this.options.logger.debug({ pod: `${e.ref.namespace}/${e.ref.name}`, status }, 'pod status not written: pod gone');
            this.forget(e.ref.uid);
            return;
          }
          this.options.logger.warn({ pod: `${e.ref.namespace}/${e.ref.name}`, err: apiErrorText(err) }, 'pod status write failed: will retry');
          e.retry = setTimeout(() => {
            e.retry = undefined;
            this.#pump(e);
          }, this.options.retryMs);
        },
      );
  }
}
