/**
 * Watch streams: newline-delimited JSON events `{type, object}` over a chunked HTTP response,
 * with initial state, resumption from a resource version (410 Gone as an ERROR event when it has
 * left the history window), label/field filtering with ADDED/DELETED on (un)matching, periodic
 * BOOKMARK events, `sendInitialEvents`, and `timeoutSeconds`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { ApiError, badRequest } from './api-error.ts';
import { apiVersionOf, type ResourceDef } from './resources.ts';
import { matchesFilter, type ObjectFilter } from './selectors.ts';
import type { Store } from './store.ts';
import { clone, type KubeObject, type StoreEvent, type WatchEventType } from './types.ts';

export interface WatchParams {
  def: ResourceDef;
  filter: ObjectFilter;
  resourceVersion?: string;
  allowBookmarks: boolean;
  sendInitialEvents?: boolean;
  timeoutSeconds?: number;
  /** Re-encodes each event's object, e.g. as a one-row Table for kubectl's `get --watch`. */
  encode?: (obj: KubeObject) => unknown;
}

export interface WatchSettings {
  /** How often BOOKMARK events go out on watches that asked for them. */
  bookmarkIntervalMs: number;
  /** A watcher whose unsent output exceeds this is cut off (it can resume), as the real server drops slow watchers. */
  maxBufferedBytes: number;
}

export interface ActiveWatch {
  close(): void;
}

export interface WatchEvent {
  type: WatchEventType;
  object: unknown;
}

/** What a store change looks like through a watch's filter, or undefined when the watch does not see it. */
export function filterEvent(def: ResourceDef, filter: ObjectFilter, e: StoreEvent): WatchEvent | undefined {
  if (e.resource !== def.plural) return undefined;
  const now = e.type !== 'DELETED' && matchesFilter(filter, def, e.object);
  const before = e.previous !== undefined && matchesFilter(filter, def, e.previous);
  if (e.type === 'DELETED') return before ? { type: 'DELETED', object: e.object } : undefined;
  if (now && before) return { type: 'MODIFIED', object: e.object };
  if (now) return { type: 'ADDED', object: e.object };
  if (before) {
    // The object left the selection: watchers see it deleted, in its last matching state.
    const last = clone(e.previous!);
    last.metadata.resourceVersion = String(e.rv);
    return { type: 'DELETED', object: last };
  }
  return undefined;
}

function bookmark(def: ResourceDef, rv: number, initialEventsEnd = false): WatchEvent {
  const metadata: Record<string, unknown> = { resourceVersion: String(rv), creationTimestamp: null };
  if (initialEventsEnd) metadata.annotations = { 'k8s.io/initial-events-end': 'true' };
  return { type: 'BOOKMARK', object: { kind: def.kind, apiVersion: apiVersionOf(def), metadata } };
}

/**
 * Serves one watch on `res`. Validation errors are thrown before anything is written, so the
 * caller can answer them as a plain `Status`.
 */
export function serveWatch(
  req: IncomingMessage,
  res: ServerResponse,
  store: Store,
  params: WatchParams,
  settings: WatchSettings,
  logger: Logger,
  onEnd: () => void,
): ActiveWatch {
  const { def, filter } = params;
  const rvParam = params.resourceVersion;
  if (rvParam && !/^\d+$/.test(rvParam)) throw badRequest(`invalid resource version: ${JSON.stringify(rvParam)}`);
  if (params.timeoutSeconds !== undefined && params.timeoutSeconds < 0) throw badRequest('timeoutSeconds must not be negative');

  const initial: WatchEvent[] = [];
  let expired: ApiError | undefined;
  const fromState = !rvParam || rvParam === '0' || params.sendInitialEvents === true;
  if (fromState) {
    for (const obj of store.scan(def.plural, filter.namespace)) {
      if (matchesFilter(filter, def, obj)) initial.push({ type: 'ADDED', object: obj });
    }
  } else {
    try {
      for (const e of store.eventsSince(Number(rvParam))) {
        const ev = filterEvent(def, filter, e);
        if (ev) initial.push(ev);
      }
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      expired = err;
    }
  }
  const startRv = store.resourceVersion;

  res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private', 'Transfer-Encoding': 'chunked' });
  res.flushHeaders();
  let closed = false;
  let unsubscribe: () => void = () => {};
  const timers: NodeJS.Timeout[] = [];
  const close = () => {
    if (closed) return;
    closed = true;
    unsubscribe();
    for (const t of timers) clearTimeout(t);
    if (!res.writableEnded) res.end();
    onEnd();
  };
  const send = (ev: WatchEvent) => {
    if (closed) return;
    const out = params.encode && ev.type !== 'BOOKMARK' && ev.type !== 'ERROR' ? { type: ev.type, object: params.encode(ev.object as KubeObject) } : ev;
    res.write(`${JSON.stringify(out)}\n`);
    if (res.writableLength > settings.maxBufferedBytes) {
      logger.warn({ resource: def.plural, buffered: res.writableLength }, 'watcher too slow: closing its watch');
      close();
    }
  };
  req.on('close', close);
  res.on('close', close);

  if (expired) {
    // As the real server does: one ERROR event carrying a 410 Status, then the stream ends.
    send({ type: 'ERROR', object: new ApiError(410, 'Expired', expired.message).toStatus() });
    close();
    return { close };
  }
  unsubscribe = store.subscribe((e) => {
    try {
      const ev = filterEvent(def, filter, e);
      if (ev) send(ev);
    } catch (err) {
      logger.error({ err }, 'watch event failed');
      close();
    }
  });
  for (const ev of initial) send(ev);
  if (params.sendInitialEvents && params.allowBookmarks) send(bookmark(def, startRv, true));
  if (params.allowBookmarks && settings.bookmarkIntervalMs > 0) {
    const t = setInterval(() => send(bookmark(def, store.resourceVersion)), settings.bookmarkIntervalMs);
    t.unref();
    timers.push(t);
  }
  if (params.timeoutSeconds !== undefined) {
    const t = setTimeout(close, params.timeoutSeconds * 1000);
    t.unref();
    timers.push(t);
  }
  return { close };
}
