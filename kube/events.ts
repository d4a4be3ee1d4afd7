/**
 * core/v1 Events about pods (Pulling, Pulled, Started, BackOff, Failed, Killing…), as the kubelet
 * records them: the same event repeated within ten minutes bumps `count` on the existing Event
 * instead of creating another. Best effort: an Event that cannot be written after a few tries is
 * logged and dropped; it never holds up a pod.
 */
import type { Logger } from 'pino';
import { sleep } from './backoff.ts';
import { apiErrorText, apiStatus, kubeTime, mergePatch, type KubeClients } from './kube-client.ts';
import { Limiter } from './limiter.ts';
import type { PodRef } from './status-writer.ts';

export type EventType = 'Normal' | 'Warning';

const AGGREGATE_MS = 10 * 60_000;
const MAX_REMEMBERED = 4096;

interface Seen {
  name: string;
  namespace: string;
  count: number;
  first: string;
  at: number;
}

export class EventRecorder {
  readonly #limiter: Limiter;
  readonly #seen = new Map<string, Seen>();
  #seq = 0n;
  #stopped = false;
  readonly #pending = new Set<Promise<void>>();

  constructor(
    private readonly clients: KubeClients,
    private readonly options: { nodeName: string; component?: string; concurrency: number; logger: Logger },
  ) {
    this.#limiter = new Limiter(options.concurrency);
  }

  /** Records an event about `pod` (fieldPath e.g. `spec.containers{app}`). Never throws. */
  record(pod: PodRef, type: EventType, reason: string, message: string, fieldPath?: string): void {
    if (this.#stopped) return;
    const p = this.#write(pod, type, reason, message, fieldPath).catch((err: unknown) =>
      this.options.logger.warn({ pod: `${pod.namespace}/${pod.name}`, reason, err: apiErrorText(err) }, 'event dropped'),
    );
    this.#pending.add(p);
    void p.finally(() => this.#pending.delete(p));
  }

  /** Resolves when the events recorded so far were written (or dropped). */
  async settled(): Promise<void> {
    while (this.#pending.size) await Promise.all([...this.#pending]);
  }

  stop(): void {
    this.#stopped = true;
  }

  async #write(pod: PodRef, type: EventType, reason: string, message: string, fieldPath?: string): Promise<void> {
    const key = `${pod.uid}|${fieldPath ?? ''}|${type}|${reason}|${message}`;
    const now = Date.now();
    const seen = this.#seen.get(key);
    for (let attempt = 0; ; attempt++) {
      try {
        if (seen && now - seen.at < AGGREGATE_MS) {
          seen.count++;
          seen.at = now;
          await this.#limiter.run(() =>
            this.clients.core.patchNamespacedEvent({ name: seen.name, namespace: seen.namespace, body: { count: seen.count, lastTimestamp: kubeTime(now) } }, mergePatch),
          );
          return;
        }
        const name = `${pod.name}.${(BigInt(now) * 1_000_000n + this.#seq++).toString(16)}`;
        const time = kubeTime(now);
        await this.#limiter.run(() =>
          this.clients.core.createNamespacedEvent({
            namespace: pod.namespace,
            body: {
              metadata: { name, namespace: pod.namespace },
              involvedObject: { kind: 'Pod', apiVersion: 'v1', namespace: pod.namespace, name: pod.name, uid: pod.uid, ...(fieldPath ? { fieldPath } : {}) },
              reason,
              message,
              type,
              source: { component: this.options.component ?? 'wasmlet', host: this.options.nodeName },
              reportingComponent: this.options.component ?? 'wasmlet',
              reportingInstance: this.options.nodeName,
              firstTimestamp: time as never,
              lastTimestamp: time as never,
              count: 1,
            },
          }),
        );
        this.#remember(key, { name, namespace: pod.namespace, count: 1, first: time, at: now });
        return;
      } catch (err) {
        // The aggregated Event may have expired or been deleted: start a new one.
        if (seen && apiStatus(err) === 404) {
          this.#seen.delete(key);
          return this.#write(pod, type, reason, message, fieldPath);
        }
        if (attempt >= 2 || this.#stopped) throw err;
        await sleep(500 * 2 ** attempt);
      }
    }
  }

  #remember(key: string, s: Seen): void {
    if (this.#seen.size >= MAX_REMEMBERED) this.#seen.delete(this.#seen.keys().next().value!);
    this.#seen.set(key, s);
  }
}
