/**
 * The API semantics on top of the store, as the real server's generic registry applies them:
 * create (AlreadyExists, generateName, namespace must exist), update with optimistic concurrency,
 * the status subresource, patches, graceful deletion of pods, finalizers, namespace termination,
 * lists at a resource version with paging, and pod binding.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { admitCreate, admitUpdate, checkMetadataTypes, validateName } from './admission.ts';
import { ApiError, STALE_MESSAGE, alreadyExists, badRequest, conflict, gone, invalid, notFound, successStatus } from './api-error.ts';
import { applyConfiguration, jsonPatch, mergePatch, parseApplyConfiguration, strategicMergePatch, type PatchType } from './patch.ts';
import { RESOURCES, apiVersionOf, qualifiedResource, resourceByPlural, type ResourceDef } from './resources.ts';
import { matchesFilter, type ObjectFilter } from './selectors.ts';
import { objectKey, type Store } from './store.ts';
import { clone, deepEqual, isPlainObject, kubeTime, type JsonObject, type KubeObject } from './types.ts';

export interface ListOptions {
  filter: ObjectFilter;
  resourceVersion?: string;
  resourceVersionMatch?: string;
  limit?: number;
  continueToken?: string;
}

export interface ListResult {
  items: KubeObject[];
  resourceVersion: string;
  continueToken?: string;
  remainingItemCount?: number;
}

export interface DeleteOptions {
  gracePeriodSeconds?: number;
  preconditions?: { uid?: string; resourceVersion?: string };
}

export interface DeleteResult {
  /** The object as it is now: terminating, or its last state when it was removed. */
  object: KubeObject;
  /** True when the object is gone from the store. */
  removed: boolean;
}

export type WriteTarget = 'main' | 'status' | 'finalize';

const NAME_CHARS = 'bcdfghjklmnpqrstvwxz2456789';

function randomSuffix(): string {
  let s = '';
  for (let i = 0; i < 5; i++) s += NAME_CHARS[Math.floor(Math.random() * NAME_CHARS.length)];
  return s;
}

/** Everything but metadata and status: what `metadata.generation` counts changes of. */
function specPart(obj: KubeObject): Record<string, unknown> {
  const { metadata: _m, status: _s, ...rest } = obj;
  return rest;
}

function parseRv(rv: string, what = 'resource version'): number {
  if (!/^\d+$/.test(rv)) throw badRequest(`invalid ${what}: ${JSON.stringify(rv)}`);
  return Number(rv);
}

export class Registry {
  /** Namespaces whose contents are being deleted right now (they finalize once that is done). */
  private readonly draining = new Set<string>();

  constructor(
    readonly store: Store,
    private readonly logger: Logger,
  ) {}

  get(def: ResourceDef, namespace: string | undefined, name: string): KubeObject {
    const obj = this.store.get(def.plural, namespace, name);
    if (!obj) throw notFound(qualifiedResource(def), name, def.group, def.plural);
    return obj;
  }

  list(def: ResourceDef, opts: ListOptions): ListResult {
    const namespace = opts.filter.namespace;
    let at: number | undefined;
    let after: string | undefined;
    if (opts.continueToken) {
      let token: { rv?: unknown; start?: unknown };
      try {
        token = JSON.parse(Buffer.from(opts.continueToken, 'base64url').toString('utf8'));
      } catch {
        throw badRequest('continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)');
      }
      if (typeof token.rv !== 'number' || typeof token.start !== 'string') throw badRequest('continue key is not valid');
      if (token.rv < this.store.oldestResourceVersion) {
        throw gone('The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.');
      }
      at = token.rv;
      after = token.start;
    } else if (opts.resourceVersion && opts.resourceVersion !== '0') {
      const rv = parseRv(opts.resourceVersion);
      if (rv > this.store.resourceVersion) {
        throw new ApiError(504, 'Timeout', `Too large resource version: ${rv}, current: ${this.store.resourceVersion}`, {
          causes: [{ reason: 'ResourceVersionTooLarge', message: 'Too large resource version' }],
          retryAfterSeconds: 1,
        });
      }
      if (opts.resourceVersionMatch === 'Exact') at = rv;
    }
    const listRv = at ?? this.store.resourceVersion;
    const source = at === undefined ? this.store.scan(def.plural, namespace) : this.store.scanAt(def.plural, at, namespace);
    let items = source.filter((o) => matchesFilter(opts.filter, def, o));
    if (after !== undefined) items = items.filter((o) => objectKey(o.metadata.namespace, o.metadata.name!) > after!);
    const result: ListResult = { items: [], resourceVersion: String(listRv) };
    const limit = opts.limit && opts.limit > 0 ? opts.limit : undefined;
    if (limit !== undefined && items.length > limit) {
      const last = items[limit - 1]!;
      result.continueToken = Buffer.from(JSON.stringify({ rv: listRv, start: objectKey(last.metadata.namespace, last.metadata.name!) })).toString('base64url');
      result.remainingItemCount = items.length - limit;
      items = items.slice(0, limit);
    }
    result.items = items.map((o) => clone(o));
    return result;
  }

  create(def: ResourceDef, namespace: string | undefined, body: unknown): KubeObject {
    const obj = this.decode(def, body);
    this.placeInNamespace(def, obj, namespace);
    if (def.namespaced) this.requireNamespace(obj.metadata.namespace!, true);
    if (obj.metadata.resourceVersion) throw badRequest('resourceVersion should not be set on objects to be created');
    const meta = obj.metadata;
    if (!meta.name) {
      if (!meta.generateName) {
        throw invalid(def.kind, '', [{ field: 'metadata.name', message: 'Required value: name or generateName is required', reason: 'FieldValueRequired' }], def.group);
      }
      meta.name = meta.generateName + randomSuffix();
      for (let i = 0; i < 8 && this.store.peek(def.plural, meta.namespace, meta.name); i++) meta.name = meta.generateName + randomSuffix();
    }
    const nameProblem = validateName(def, meta.name);
    if (nameProblem) throw invalid(def.kind, meta.name, [{ field: 'metadata.name', message: `Invalid value: ${JSON.stringify(meta.name)}: ${nameProblem}` }], def.group);
    admitCreate(def, obj);
    if (this.store.peek(def.plural, meta.namespace, meta.name)) throw alreadyExists(qualifiedResource(def), meta.name, def.group, def.plural);
    meta.uid = randomUUID();
    meta.creationTimestamp = kubeTime();
    delete meta.deletionTimestamp;
    delete meta.deletionGracePeriodSeconds;
    delete meta.selfLink;
    delete meta.managedFields;
    if (def.generation) meta.generation = 1;
    else delete meta.generation;
    const created = this.store.insert(def.plural, obj);
    this.logger.debug({ resource: def.plural, namespace: meta.namespace, name: meta.name, rv: created.metadata.resourceVersion }, 'created');
    return created;
  }

  update(def: ResourceDef, namespace: string | undefined, name: string, body: unknown, target: WriteTarget = 'main'): KubeObject {
    const old = this.store.peek(def.plural, namespace, name);
    if (!old) throw notFound(qualifiedResource(def), name, def.group, def.plural);
    const obj = this.decode(def, body);
    return this.commit(def, old, obj, target);
  }

  patch(def: ResourceDef, namespace: string | undefined, name: string, type: PatchType, body: string, target: WriteTarget, fieldManager?: string): KubeObject {
    const old = this.store.peek(def.plural, namespace, name);
    if (type === 'apply') {
      if (!fieldManager) throw badRequest('PATCH requests with apply content type must provide a fieldManager');
      const applied = parseApplyConfiguration(body);
      const appliedMeta = isPlainObject(applied.metadata) ? applied.metadata : {};
      if (appliedMeta.name !== undefined && appliedMeta.name !== name) {
        throw badRequest(`the name of the object (${String(appliedMeta.name)}) does not match the name on the URL (${name})`);
      }
      if (!old) {
        if (target !== 'main') throw notFound(qualifiedResource(def), name, def.group, def.plural);
        return this.create(def, namespace, { ...applied, metadata: { ...appliedMeta, name } });
      }
      this.decode(def, clone(applied));
      return this.commit(def, old, this.decode(def, applyConfiguration(clone(old), applied, def.kind)), target);
    }
    if (!old) throw notFound(qualifiedResource(def), name, def.group, def.plural);
    let doc: unknown;
    try {
      doc = JSON.parse(body);
    } catch (err) {
      throw badRequest(`error decoding patch: ${err instanceof Error ? err.message : String(err)}`);
    }
    let patched: unknown;
    if (type === 'json') patched = jsonPatch(old, doc);
    else if (type === 'merge') patched = mergePatch(clone(old), doc);
    else patched = strategicMergePatch(clone(old), doc, def.kind);
    if (!isPlainObject(patched) || !isPlainObject(patched.metadata)) {
      throw invalid(def.kind, name, [{ field: 'metadata', message: 'Required value: the patched object must be an object with metadata' }], def.group);
    }
    return this.commit(def, old, this.decode(def, patched), target);
  }

  delete(def: ResourceDef, namespace: string | undefined, name: string, options: DeleteOptions = {}): DeleteResult {
    const old = this.store.peek(def.plural, namespace, name);
    if (!old) throw notFound(qualifiedResource(def), name, def.group, def.plural);
    const pre = options.preconditions;
    if (pre?.uid && pre.uid !== old.metadata.uid) {
      throw conflict(qualifiedResource(def), name, `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${old.metadata.uid}`, def.group, def.plural);
    }
    if (pre?.resourceVersion && pre.resourceVersion !== old.metadata.resourceVersion) {
      throw conflict(qualifiedResource(def), name, `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${old.metadata.resourceVersion}`, def.group, def.plural);
    }
    if (def.plural === 'namespaces') return this.deleteNamespace(old);
    let grace = 0;
    if (def.plural === 'pods') {
      const spec = isPlainObject(old.spec) ? old.spec : {};
      const status = isPlainObject(old.status) ? old.status : {};
      const declared = typeof spec.terminationGracePeriodSeconds === 'number' ? spec.terminationGracePeriodSeconds : 30;
      grace = options.gracePeriodSeconds ?? declared;
      if (grace < 0) grace = 1;
      // Pods that never ran anywhere, or already finished, have nothing to drain.
      if (!spec.nodeName || status.phase === 'Succeeded' || status.phase === 'Failed') grace = 0;
    }
    const meta = old.metadata;
    if (meta.deletionTimestamp && grace >= (meta.deletionGracePeriodSeconds ?? 0)) return { object: clone(old), removed: false };
    if (grace > 0 || meta.finalizers?.length) {
      const next = clone(old);
      next.metadata.deletionTimestamp = kubeTime(Date.now() + grace * 1000);
      next.metadata.deletionGracePeriodSeconds = grace;
      return { object: this.store.replace(def.plural, next), removed: false };
    }
    return { object: this.remove(def, old), removed: true };
  }

  deleteCollection(def: ResourceDef, filter: ObjectFilter, options: DeleteOptions = {}): KubeObject[] {
    const out: KubeObject[] = [];
    for (const obj of this.store.scan(def.plural, filter.namespace)) {
      if (!matchesFilter(filter, def, obj)) continue;
      out.push(this.delete(def, obj.metadata.namespace, obj.metadata.name!, options).object);
    }
    return out;
  }

  /** `pods/{name}/binding`: assigns an unscheduled pod to a node. */
  bind(namespace: string, name: string, body: unknown): JsonObject {
    const def = resourceByPlural('pods')!;
    const pod = this.store.peek('pods', namespace, name);
    if (!pod) throw notFound('pods', name, '', 'pods');
    const target = isPlainObject(body) && isPlainObject(body.target) ? body.target : undefined;
    if (!target || typeof target.name !== 'string' || !target.name) {
      throw invalid('Binding', name, [{ field: 'target.name', message: 'Required value', reason: 'FieldValueRequired' }]);
    }
    const spec = isPlainObject(pod.spec) ? pod.spec : {};
    if (spec.nodeName) throw conflict('pods', name, `pod ${name} is already assigned to node ${JSON.stringify(spec.nodeName)}`, '', 'pods');
    const next = clone(pod);
    (next.spec as Record<string, unknown>).nodeName = target.name;
    const status = (isPlainObject(next.status) ? next.status : {}) as Record<string, unknown>;
    const conditions = Array.isArray(status.conditions) ? status.conditions.filter((c) => !(isPlainObject(c) && c.type === 'PodScheduled')) : [];
    conditions.push({ type: 'PodScheduled', status: 'True', lastProbeTime: null, lastTransitionTime: kubeTime() });
    status.conditions = conditions;
    next.status = status;
    this.store.replace(def.plural, next);
    return successStatus();
  }

  /** Decodes a request body into an object of `def`: kind and apiVersion must match when given. */
  private decode(def: ResourceDef, body: unknown): KubeObject {
    if (!isPlainObject(body)) throw badRequest(`the body of the request is not a ${def.kind} object`);
    const apiVersion = apiVersionOf(def);
    if (body.kind !== undefined && body.kind !== def.kind) {
      throw badRequest(`the kind in the data (${String(body.kind)}) does not match the expected kind (${def.kind})`);
    }
    if (body.apiVersion !== undefined && body.apiVersion !== apiVersion) {
      throw badRequest(`the API version in the data (${String(body.apiVersion)}) does not match the expected API version (${apiVersion})`);
    }
    if (body.metadata !== undefined && !isPlainObject(body.metadata)) throw badRequest('metadata must be an object');
    for (const field of ['spec', 'status'] as const) {
      const v = body[field];
      if (v !== undefined && v !== null && !isPlainObject(v)) throw badRequest(`${def.kind}.${field} must be an object`);
    }
    const obj = { ...body, apiVersion, kind: def.kind, metadata: { ...((body.metadata as object) ?? {}) } } as KubeObject;
    checkMetadataTypes(obj);
    return obj;
  }

  private placeInNamespace(def: ResourceDef, obj: KubeObject, namespace: string | undefined): void {
    if (!def.namespaced) {
      delete obj.metadata.namespace;
      return;
    }
    const given = obj.metadata.namespace;
    if (given && namespace && given !== namespace) {
      throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
    }
    if (!namespace) throw badRequest(`${def.plural} is namespaced: the request must name a namespace`);
    obj.metadata.namespace = namespace;
  }

  private requireNamespace(namespace: string, forCreate: boolean): void {
    const ns = this.store.peek('namespaces', undefined, namespace);
    if (!ns) throw notFound('namespaces', namespace, '', 'namespaces');
    if (forCreate && ns.metadata.deletionTimestamp) {
      throw new ApiError(403, 'Forbidden', `unable to create new content in namespace ${namespace} because it is being terminated`, { name: namespace, kind: 'namespaces' });
    }
  }

  /** Writes a new version of `old`: preconditions, subresource rules, admission, generation, no-op detection. */
  private commit(def: ResourceDef, old: KubeObject, obj: KubeObject, target: WriteTarget): KubeObject {
    const name = old.metadata.name!;
    if (obj.metadata.name && obj.metadata.name !== name) {
      throw badRequest(`the name of the object (${obj.metadata.name}) does not match the name on the URL (${name})`);
    }
    if (def.namespaced && obj.metadata.namespace && obj.metadata.namespace !== old.metadata.namespace) {
      throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
    }
    const rv = obj.metadata.resourceVersion;
    if (rv !== undefined && rv !== '') {
      parseRv(rv);
      if (rv !== old.metadata.resourceVersion) throw conflict(qualifiedResource(def), name, STALE_MESSAGE, def.group, def.plural);
    }
    if (obj.metadata.uid && obj.metadata.uid !== old.metadata.uid) {
      throw conflict(qualifiedResource(def), name, `Precondition failed: UID in precondition: ${obj.metadata.uid}, UID in object meta: ${old.metadata.uid}`, def.group, def.plural);
    }
    let next: KubeObject;
    if (target === 'status') {
      next = clone(old);
      if (obj.status !== undefined) next.status = obj.status;
      else delete next.status;
    } else if (target === 'finalize') {
      next = clone(old);
      const spec = isPlainObject(obj.spec) ? obj.spec : {};
      next.spec = { ...(isPlainObject(next.spec) ? next.spec : {}), finalizers: Array.isArray(spec.finalizers) ? spec.finalizers : [] };
    } else {
      next = obj;
      const meta = next.metadata;
      for (const f of ['uid', 'creationTimestamp', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'generation', 'namespace'] as const) {
        if (old.metadata[f] === undefined) delete meta[f];
        else meta[f] = old.metadata[f] as never;
      }
      meta.name = name;
      delete meta.selfLink;
      delete meta.managedFields;
      if (def.statusSubresource) {
        if (old.status === undefined) delete next.status;
        else next.status = clone(old.status);
      }
    }
    next.metadata.resourceVersion = old.metadata.resourceVersion;
    admitUpdate(def, next, old);
    if (def.generation && !deepEqual(specPart(next), specPart(old))) next.metadata.generation = (old.metadata.generation ?? 0) + 1;
    if (deepEqual(next, old)) return clone(old);
    const nm = next.metadata;
    if (nm.deletionTimestamp && !nm.finalizers?.length && (nm.deletionGracePeriodSeconds ?? 0) === 0 && def.plural !== 'namespaces') {
      // The last finalizer is gone from an object being deleted: the write completes the deletion.
      const written = this.store.replace(def.plural, next);
      this.remove(def, written);
      return written;
    }
    const written = this.store.replace(def.plural, next);
    if (def.plural === 'namespaces') this.finalizeNamespace(name);
    return written;
  }

  private remove(def: ResourceDef, obj: KubeObject): KubeObject {
    const removed = this.store.remove(def.plural, obj.metadata.namespace, obj.metadata.name!)!;
    this.logger.debug({ resource: def.plural, namespace: obj.metadata.namespace, name: obj.metadata.name, rv: removed.metadata.resourceVersion }, 'deleted');
    if (def.namespaced && obj.metadata.namespace) this.finalizeNamespace(obj.metadata.namespace);
    return removed;
  }

  private deleteNamespace(old: KubeObject): DeleteResult {
    const name = old.metadata.name!;
    if (!old.metadata.deletionTimestamp) {
      const next = clone(old);
      next.metadata.deletionTimestamp = kubeTime();
      next.metadata.deletionGracePeriodSeconds = 0;
      next.status = { ...(isPlainObject(old.status) ? old.status : {}), phase: 'Terminating' };
      this.store.replace('namespaces', next);
      // Acting as the namespace controller: delete the contents (pods drain gracefully).
      this.draining.add(name);
      try {
        for (const def of RESOURCES) {
          if (!def.namespaced) continue;
          for (const obj of this.store.scan(def.plural, name)) {
            try {
              this.delete(def, name, obj.metadata.name!);
            } catch (err) {
              this.logger.warn({ err, resource: def.plural, name: obj.metadata.name }, 'namespace cleanup failed');
            }
          }
        }
      } finally {
        this.draining.delete(name);
      }
    }
    const removed = this.finalizeNamespace(name);
    return removed ? { object: removed, removed: true } : { object: this.store.get('namespaces', undefined, name)!, removed: false };
  }

  /** Removes a terminating namespace once it is empty and has no finalizers left. */
  private finalizeNamespace(name: string): KubeObject | undefined {
    const ns = this.store.peek('namespaces', undefined, name);
    if (!ns?.metadata.deletionTimestamp || ns.metadata.finalizers?.length || this.draining.has(name)) return undefined;
    if (this.store.countInNamespace(name) > 0) return undefined;
    return this.store.remove('namespaces', undefined, name);
  }
}
