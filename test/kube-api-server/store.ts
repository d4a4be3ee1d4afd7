/**
 * The object store: every object of every resource, one global resource version counter (as
 * etcd's revision), and a bounded window of past changes so that watches can resume and lists
 * can be served as of an earlier resource version. Stored objects are never mutated: each write
 * stores a new object, and readers outside the store get copies.
 */
import { gone } from './api-error.ts';
import type { KubeObject, StoreEvent } from './types.ts';
import { clone } from './types.ts';

export type StoreListener = (event: StoreEvent) => void;

export interface StoreOptions {
  /** How many changes to keep for watch resumption and consistent paging. */
  historySize: number;
  /** Told about a listener that threw; the write itself has happened and stands. */
  onListenerError?: (err: unknown) => void;
}

function keyOf(obj: KubeObject): string {
  const ns = obj.metadata.namespace;
  return ns ? `${ns}/${obj.metadata.name}` : obj.metadata.name!;
}

export function objectKey(namespace: string | undefined, name: string): string {
  return namespace ? `${namespace}/${name}` : name;
}

export class Store {
  private readonly objects = new Map<string, Map<string, KubeObject>>();
  private readonly listeners = new Set<StoreListener>();
  private history: StoreEvent[] = [];
  private rv = 0;
  /** Every change after this resource version is still in `history`. */
  private compactedRv = 0;
  private readonly historySize: number;
  private readonly onListenerError: ((err: unknown) => void) | undefined;

  constructor(options: StoreOptions) {
    this.historySize = Math.max(1, options.historySize);
    this.onListenerError = options.onListenerError;
  }

  /** The latest resource version issued. */
  get resourceVersion(): number {
    return this.rv;
  }

  /** The oldest resource version a watch can resume from or a list can be served at. */
  get oldestResourceVersion(): number {
    return this.compactedRv;
  }

  /** The stored object (shared, read-only: callers that hand it out must copy it). */
  peek(resource: string, namespace: string | undefined, name: string): KubeObject | undefined {
    return this.objects.get(resource)?.get(objectKey(namespace, name));
  }

  get(resource: string, namespace: string | undefined, name: string): KubeObject | undefined {
    const obj = this.peek(resource, namespace, name);
    return obj && clone(obj);
  }

  /** Current objects of a resource (shared, read-only), sorted by namespace and name as etcd keys sort. */
  scan(resource: string, namespace?: string): KubeObject[] {
    const all = [...(this.objects.get(resource)?.values() ?? [])];
    const out = namespace === undefined ? all : all.filter((o) => o.metadata.namespace === namespace);
    return out.sort((a, b) => compareKeys(keyOf(a), keyOf(b)));
  }

  /** Number of objects stored in a namespace, across resources. */
  countInNamespace(namespace: string): number {
    let n = 0;
    for (const m of this.objects.values()) for (const o of m.values()) if (o.metadata.namespace === namespace) n++;
    return n;
  }

  /**
   * Objects of a resource as they were at resource version `rv`, rebuilt by undoing later
   * changes from the history window; 410 Gone when `rv` is older than the window.
   */
  scanAt(resource: string, rv: number, namespace?: string): KubeObject[] {
    if (rv >= this.rv) return this.scan(resource, namespace);
    if (rv < this.compactedRv) throw gone(`The resourceVersion for the provided list is too old.`);
    const state = new Map(this.objects.get(resource) ?? []);
    for (let i = this.history.length - 1; i >= 0; i--) {
      const e = this.history[i]!;
      if (e.rv <= rv) break;
      if (e.resource !== resource) continue;
      const key = keyOf(e.object);
      if (e.type === 'ADDED') state.delete(key);
      else state.set(key, e.previous!);
    }
    const all = [...state.values()];
    const out = namespace === undefined ? all : all.filter((o) => o.metadata.namespace === namespace);
    return out.sort((a, b) => compareKeys(keyOf(a), keyOf(b)));
  }

  /** Changes after `rv`, oldest first; 410 Gone when some of them have left the window. */
  eventsSince(rv: number): StoreEvent[] {
    if (rv < this.compactedRv) throw gone(`too old resource version: ${rv} (${this.compactedRv})`);
    let lo = 0;
    let hi = this.history.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.history[mid]!.rv <= rv) lo = mid + 1;
      else hi = mid;
    }
    return this.history.slice(lo);
  }

  subscribe(listener: StoreListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Stores a new object; assigns its resource version. The caller has checked it does not exist. */
  insert(resource: string, obj: KubeObject): KubeObject {
    const stored = this.stamp(obj);
    this.bucket(resource).set(keyOf(stored), stored);
    this.record({ type: 'ADDED', rv: this.rv, resource, object: stored });
    return clone(stored);
  }

  /** Replaces a stored object with a new version. */
  replace(resource: string, obj: KubeObject): KubeObject {
    const key = keyOf(obj);
    const previous = this.bucket(resource).get(key);
    if (!previous) throw new Error(`store: replace of missing ${resource} ${key}`);
    const stored = this.stamp(obj);
    this.bucket(resource).set(key, stored);
    this.record({ type: 'MODIFIED', rv: this.rv, resource, object: stored, previous });
    return clone(stored);
  }

  /** Removes an object; the DELETED event carries its last state with the deletion's resource version. */
  remove(resource: string, namespace: string | undefined, name: string): KubeObject | undefined {
    const key = objectKey(namespace, name);
    const previous = this.bucket(resource).get(key);
    if (!previous) return undefined;
    this.bucket(resource).delete(key);
    const last = this.stamp(previous);
    this.record({ type: 'DELETED', rv: this.rv, resource, object: last, previous });
    return clone(last);
  }

  /**
   * Forgets the change history, as an etcd compaction does: every resource version issued
   * before this call becomes too old to resume a watch from (410 Gone).
   */
  compact(): void {
    this.rv++;
    this.compactedRv = this.rv;
    this.history = [];
  }

  private stamp(obj: KubeObject): KubeObject {
    this.rv++;
    const stored = clone(obj);
    stored.metadata.resourceVersion = String(this.rv);
    return stored;
  }

  private bucket(resource: string): Map<string, KubeObject> {
    let m = this.objects.get(resource);
    if (!m) {
      m = new Map();
      this.objects.set(resource, m);
    }
    return m;
  }

  private record(event: StoreEvent): void {
    this.history.push(event);
    if (this.history.length > this.historySize) {
      const drop = this.history.length - this.historySize;
      this.compactedRv = this.history[drop - 1]!.rv;
      this.history = this.history.slice(drop);
    }
    for (const l of [...this.listeners]) {
      try {
        l(event);
      } catch (err) {
        this.onListenerError?.(err);
      }
    }
  }
}

function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
