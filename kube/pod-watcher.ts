/**
 * Watches the pods bound to this node (`fieldSelector=spec.nodeName=<node>`), as a client-go
 * reflector does: list, then watch from the list's resourceVersion; a watch that ends is resumed
 * from the last resourceVersion seen (bookmarks included); 410 Gone relists; any other failure
 * (API server down) is retried with jittered backoff. A relist hands the full set of pods to
 * `sync`, so pods deleted while nobody watched are noticed.
 */
import { Watch, type V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { jittered, sleep, type Backoff } from './backoff.ts';
import { apiErrorText, apiStatus, type KubeClients } from './kube-client.ts';

export interface PodWatchHandlers {
  /** After every (re)list: the pods that exist now. Pods known before and missing here are gone. */
  sync(pods: V1Pod[]): void;
  upsert(pod: V1Pod): void;
  remove(pod: V1Pod): void;
}

export interface PodWatcherOptions {
  nodeName: string;
  backoff: Backoff;
  logger: Logger;
  /** Server-side watch timeout; the watch is then resumed. Default 300. */
  watchTimeoutSeconds?: number;
}

interface WatchResult {
  resourceVersion: string;
  gone: boolean;
  events: number;
  error?: unknown;
}

export class PodWatcher {
  readonly #abort = new AbortController();
  #request: AbortController | undefined;
  #loop: Promise<void> | undefined;
  #resourceVersion = '';
  /** Lists done so far (the first one and every relist). */
  lists = 0;
  /** Watch connections opened so far. */
  watches = 0;

  constructor(
    private readonly clients: KubeClients,
    private readonly handlers: PodWatchHandlers,
    private readonly options: PodWatcherOptions,
  ) {}

  /** Starts watching; resolves after the first successful list (retrying until then, or until stop). */
  start(): Promise<void> {
    return new Promise((resolve) => {
      this.#loop = this.#run(resolve);
    });
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    this.#request?.abort();
    await this.#loop;
  }

  get resourceVersion(): string {
    return this.#resourceVersion;
  }

  async #run(onFirstList: () => void): Promise<void> {
    const log = this.options.logger;
    const signal = this.#abort.signal;
    let failures = 0;
    while (!signal.aborted) {
      try {
        if (!this.#resourceVersion) {
          const list = await this.clients.core.listPodForAllNamespaces({ fieldSelector: this.#selector() });
          this.lists++;
          if (signal.aborted) break;
          this.handlers.sync(list.items);
          this.#resourceVersion = list.metadata?.resourceVersion ?? '';
          onFirstList();
          if (failures > 0) log.info({ pods: list.items.length }, 'pod list recovered');
        }
        const started = Date.now();
        const r = await this.#watchOnce(this.#resourceVersion);
        if (r.resourceVersion) this.#resourceVersion = r.resourceVersion;
        if (r.gone) {
          log.info('pod watch expired (410 Gone): relisting');
          this.#resourceVersion = '';
          failures = 0;
          continue;
        }
        if (r.error) throw r.error;
        // A watch that ends at once with nothing in it is a server in trouble: back off.
        if (r.events === 0 && Date.now() - started < 1000) {
          if (!(await sleep(jittered(failures++, this.options.backoff), signal))) break;
        } else failures = 0;
      } catch (err) {
        if (signal.aborted) break;
        if (apiStatus(err) === 410) {
          this.#resourceVersion = '';
          continue;
        }
        const delay = jittered(failures++, this.options.backoff);
        log.warn({ err: apiErrorText(err), retryInMs: delay }, 'pod watch failed: retrying');
        if (!(await sleep(delay, signal))) break;
      }
    }
  }

  #selector(): string {
    return `spec.nodeName=${this.options.nodeName}`;
  }

  #watchOnce(resourceVersion: string): Promise<WatchResult> {
    const result: WatchResult = { resourceVersion, gone: false, events: 0 };
    const timeoutSeconds = this.options.watchTimeoutSeconds ?? 300;
    return new Promise<WatchResult>((resolve) => {
      let settled = false;
      let idle: NodeJS.Timeout | undefined;
      const finish = (err?: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(idle);
        if (err && !this.#abort.signal.aborted) {
          if (apiStatus(err) === 410) result.gone = true;
          else result.error = err;
        }
        resolve(result);
      };
      // A connection that silently died never ends by itself: give up when nothing came for a while.
      const touch = () => {
        clearTimeout(idle);
        idle = setTimeout(() => {
          this.#request?.abort();
          finish();
        }, (timeoutSeconds + 30) * 1000);
      };
      touch();
      this.watches++;
      new Watch(this.clients.config)
        .watch(
          '/api/v1/pods',
          { fieldSelector: this.#selector(), resourceVersion, allowWatchBookmarks: true, timeoutSeconds },
          (type: string, obj: V1Pod & { code?: number }) => {
            touch();
            if (settled) return;
            if (type === 'ERROR') {
              if (obj.code === 410) result.gone = true;
              else result.error = new Error(`watch error: ${JSON.stringify(obj)}`);
              this.#request?.abort();
              finish();
              return;
            }
            const rv = obj.metadata?.resourceVersion;
            if (rv) result.resourceVersion = rv;
            if (type === 'BOOKMARK') return;
            result.events++;
            if (type === 'DELETED') this.handlers.remove(obj);
            else this.handlers.upsert(obj);
          },
          (err: unknown) => finish(err ?? undefined),
        )
        .then(
          (req) => {
            this.#request = req;
            if (this.#abort.signal.aborted) req.abort();
          },
          (err: unknown) => finish(err),
        );
    });
  }
}
