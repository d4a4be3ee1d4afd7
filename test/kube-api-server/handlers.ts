/**
 * REST verbs on resource paths: get, list, watch, create, update, patch, delete,
 * deletecollection, and the `status`, `finalize`, `binding` and `log` subresources, with
 * content negotiation (JSON or server-side Table) and the real server's query parameters.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { parse as parseYaml } from 'yaml';
import { ApiError, badRequest, methodNotAllowed, successStatus, unsupportedMediaType } from './api-error.ts';
import { Query, parseJsonBody, readBody, sendJson } from './http-util.ts';
import { kubeletLogUrl, proxyLogs, type KubeletClientCredentials } from './log-proxy.ts';
import { parseFieldValidation, validateFields } from './field-validation.ts';
import { patchTypeOf } from './patch.ts';
import { STREAM_SUBRESOURCES, upgradeRequired } from './stream-proxy.ts';
import type { DeleteOptions, Registry } from './registry.ts';
import { apiVersionOf, type ResourceDef } from './resources.ts';
import { parseFieldSelector, parseLabelSelector, type ObjectFilter } from './selectors.ts';
import { toTable } from './table.ts';
import { isPlainObject, type KubeObject } from './types.ts';
import { serveWatch, type ActiveWatch, type WatchSettings } from './watch.ts';

export interface HandlerContext {
  registry: Registry;
  logger: Logger;
  watchSettings: WatchSettings;
  kubeletClient: KubeletClientCredentials;
  /** Registers an open watch so that stopping the server can end it; returns the deregistration. */
  trackWatch(watch: ActiveWatch): () => void;
}

export interface ResourceRequest {
  def: ResourceDef;
  namespace?: string;
  name?: string;
  subresource?: string;
  watch: boolean;
}

type Rendering = { as: 'json' } | { as: 'table'; version: string };

/** Picks the response form from `Accept`: plain JSON or a meta.k8s.io Table; 406 when neither is acceptable. */
export function negotiate(accept: string | undefined): Rendering {
  if (!accept || !accept.trim()) return { as: 'json' };
  for (const range of accept.split(',')) {
    const [type, ...rawParams] = range.split(';').map((x) => x.trim());
    const params = Object.fromEntries(rawParams.map((p) => p.split('=').map((x) => x.trim())));
    const media = (type ?? '').toLowerCase();
    if (media === 'application/json') {
      if (params.as === 'Table' && (params.g === undefined || params.g === 'meta.k8s.io')) return { as: 'table', version: params.v ?? 'v1' };
      if (params.as === undefined) return { as: 'json' };
    } else if (media === '*/*' || media === 'application/*') {
      return { as: 'json' };
    }
  }
  throw new ApiError(406, 'NotAcceptable', `only the following media types are accepted: application/json, application/json;as=Table;v=v1;g=meta.k8s.io (got ${JSON.stringify(accept)})`);
}

async function readObjectBody(req: IncomingMessage): Promise<unknown> {
  const text = await readBody(req);
  const mediaType = (req.headers['content-type'] ?? 'application/json').split(';')[0]!.trim().toLowerCase();
  if (mediaType === 'application/json' || mediaType === '') return parseJsonBody(text);
  if (mediaType === 'application/yaml') {
    try {
      return parseYaml(text);
    } catch (err) {
      throw badRequest(`error decoding YAML: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  throw unsupportedMediaType(req.headers['content-type'] ?? '');
}

function filterOf(def: ResourceDef, q: Query, namespace: string | undefined, name?: string): ObjectFilter {
  const filter: ObjectFilter = {
    namespace,
    labels: parseLabelSelector(q.string('labelSelector') ?? ''),
    fields: parseFieldSelector(q.string('fieldSelector') ?? '', def),
  };
  if (name !== undefined) filter.fields.push({ key: 'metadata.name', operator: '=', value: name });
  return filter;
}

function listBody(def: ResourceDef, items: KubeObject[], meta: Record<string, unknown>, rendering: Rendering): unknown {
  if (rendering.as === 'table') {
    const table = toTable(def, items, String(meta.resourceVersion), rendering.version);
    return { ...table, metadata: meta };
  }
  return { kind: `${def.kind}List`, apiVersion: apiVersionOf(def), metadata: meta, items };
}

function objectBody(def: ResourceDef, obj: KubeObject, rendering: Rendering): unknown {
  return rendering.as === 'table' ? toTable(def, [obj], obj.metadata.resourceVersion ?? '', rendering.version) : obj;
}

async function deleteOptionsOf(req: IncomingMessage, q: Query): Promise<DeleteOptions> {
  const text = await readBody(req);
  if (text.trim() !== '') {
    const body = parseJsonBody(text);
    if (!isPlainObject(body)) throw badRequest('DeleteOptions must be a JSON object');
    const opts: DeleteOptions = {};
    if (body.gracePeriodSeconds !== undefined && body.gracePeriodSeconds !== null) {
      if (typeof body.gracePeriodSeconds !== 'number' || !Number.isInteger(body.gracePeriodSeconds)) throw badRequest('gracePeriodSeconds must be an integer');
      opts.gracePeriodSeconds = body.gracePeriodSeconds;
    }
    if (isPlainObject(body.preconditions)) {
      const p = body.preconditions;
      opts.preconditions = {
        uid: typeof p.uid === 'string' ? p.uid : undefined,
        resourceVersion: typeof p.resourceVersion === 'string' ? p.resourceVersion : undefined,
      };
    }
    if (Array.isArray(body.dryRun) && body.dryRun.length) throw dryRunUnsupported();
    return opts;
  }
  const grace = q.int('gracePeriodSeconds');
  return grace === undefined ? {} : { gracePeriodSeconds: grace };
}

function dryRunUnsupported(): ApiError {
  return badRequest('dryRun is not supported by this test API server');
}

/** `Warning: 299 - "…"` headers, as the real server sends them (fieldValidation=Warn). */
function warn(res: ServerResponse, warnings: string[]): void {
  if (warnings.length) res.setHeader('Warning', warnings.map((w) => `299 - ${JSON.stringify(w)}`));
}

export async function handleResource(ctx: HandlerContext, r: ResourceRequest, req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
  const { def, namespace, name, subresource } = r;
  const q = new Query(url.searchParams);
  const method = req.method ?? 'GET';
  if (q.string('dryRun') && method !== 'GET') throw dryRunUnsupported();

  if (subresource !== undefined && STREAM_SUBRESOURCES.includes(subresource)) throw upgradeRequired();
  if (subresource === 'log') {
    if (method !== 'GET') throw methodNotAllowed(`${method} is not supported on pods/log`);
    const target = kubeletLogUrl(ctx.registry, namespace!, name!, q);
    await proxyLogs(req, res, target, ctx.kubeletClient, ctx.logger);
    return;
  }

  switch (method) {
    case 'GET': {
      const rendering = negotiate(req.headers.accept);
      const watch = r.watch || q.bool('watch');
      if (!watch && name !== undefined) {
        sendJson(res, 200, objectBody(def, ctx.registry.get(def, namespace, name), rendering));
        return;
      }
      const filter = filterOf(def, q, namespace, name);
      const rvMatch = q.string('resourceVersionMatch');
      if (rvMatch !== undefined && !['Exact', 'NotOlderThan'].includes(rvMatch)) throw badRequest(`resourceVersionMatch: Unsupported value: ${JSON.stringify(rvMatch)}: supported values: "Exact", "NotOlderThan"`);
      if (watch) {
        const sendInitialEvents = q.string('sendInitialEvents') === undefined ? undefined : q.bool('sendInitialEvents');
        if (sendInitialEvents !== undefined && rvMatch !== 'NotOlderThan') throw badRequest('sendInitialEvents is forbidden for watch unless resourceVersionMatch is set to NotOlderThan');
        if (rvMatch !== undefined && sendInitialEvents === undefined) throw badRequest('resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided');
        let untrack = () => {};
        const active = serveWatch(
          req,
          res,
          ctx.registry.store,
          {
            def,
            filter,
            resourceVersion: q.string('resourceVersion'),
            allowBookmarks: q.bool('allowWatchBookmarks'),
            sendInitialEvents,
            timeoutSeconds: q.int('timeoutSeconds'),
            encode: rendering.as === 'table' ? (o) => toTable(def, [o], o.metadata.resourceVersion ?? '', rendering.version) : undefined,
          },
          ctx.watchSettings,
          ctx.logger,
          () => untrack(),
        );
        untrack = ctx.trackWatch(active);
        return;
      }
      if (rvMatch !== undefined && !q.string('resourceVersion')) throw badRequest('resourceVersionMatch is forbidden unless resourceVersion is provided');
      const limit = q.int('limit');
      if (limit !== undefined && limit < 0) throw badRequest('limit must not be negative');
      const result = ctx.registry.list(def, {
        filter,
        resourceVersion: q.string('resourceVersion'),
        resourceVersionMatch: rvMatch,
        limit,
        continueToken: q.string('continue'),
      });
      const meta: Record<string, unknown> = { resourceVersion: result.resourceVersion };
      if (result.continueToken) meta.continue = result.continueToken;
      if (result.remainingItemCount !== undefined) meta.remainingItemCount = result.remainingItemCount;
      sendJson(res, 200, listBody(def, result.items, meta, rendering));
      return;
    }
    case 'POST': {
      if (subresource === 'binding') {
        sendJson(res, 201, ctx.registry.bind(namespace!, name!, await readObjectBody(req)));
        return;
      }
      if (name !== undefined) throw methodNotAllowed(`POST is not supported on a named ${def.singular}`);
      if (def.namespaced && namespace === undefined) throw methodNotAllowed(`create ${def.plural} inside a namespace: POST to .../namespaces/{namespace}/${def.plural}`);
      const body = await readObjectBody(req);
      const warnings = validateFields(def, body, parseFieldValidation(q.string('fieldValidation')));
      const created = ctx.registry.create(def, namespace, body);
      warn(res, warnings);
      sendJson(res, 201, created);
      return;
    }
    case 'PUT': {
      if (name === undefined) throw methodNotAllowed(`PUT is not supported on a ${def.singular} collection`);
      if (subresource !== undefined && subresource !== 'status' && subresource !== 'finalize') throw methodNotAllowed(`PUT is not supported on ${def.plural}/${subresource}`);
      const target = subresource === 'status' ? 'status' : subresource === 'finalize' ? 'finalize' : 'main';
      const body = await readObjectBody(req);
      const warnings = validateFields(def, body, parseFieldValidation(q.string('fieldValidation')));
      const updated = ctx.registry.update(def, namespace, name, body, target);
      warn(res, warnings);
      sendJson(res, 200, updated);
      return;
    }
    case 'PATCH': {
      if (name === undefined) throw methodNotAllowed(`PATCH is not supported on a ${def.singular} collection`);
      if (subresource !== undefined && subresource !== 'status') throw methodNotAllowed(`PATCH is not supported on ${def.plural}/${subresource}`);
      const type = patchTypeOf(req.headers['content-type']);
      const existed = ctx.registry.store.peek(def.plural, namespace, name) !== undefined;
      const body = await readBody(req);
      let warnings: string[] = [];
      if (type !== 'json') {
        let doc: unknown;
        try {
          doc = type === 'apply' ? parseYaml(body) : JSON.parse(body);
        } catch {
          doc = undefined; // the patch itself reports what is wrong with it
        }
        warnings = validateFields(def, doc, parseFieldValidation(q.string('fieldValidation')), { patch: type !== 'apply' });
      }
      const out = ctx.registry.patch(def, namespace, name, type, body, subresource === 'status' ? 'status' : 'main', q.string('fieldManager'));
      warn(res, warnings);
      sendJson(res, existed ? 200 : 201, out);
      return;
    }
    case 'DELETE': {
      if (subresource !== undefined) throw methodNotAllowed(`DELETE is not supported on ${def.plural}/${subresource}`);
      const options = await deleteOptionsOf(req, q);
      if (name === undefined) {
        if (def.plural === 'namespaces') throw methodNotAllowed('deletecollection is not supported on namespaces');
        if (def.namespaced && namespace === undefined) throw methodNotAllowed(`deletecollection of ${def.plural} works inside one namespace only`);
        const items = ctx.registry.deleteCollection(def, filterOf(def, q, namespace), options);
        sendJson(res, 200, listBody(def, items, { resourceVersion: String(ctx.registry.store.resourceVersion) }, { as: 'json' }));
        return;
      }
      const result = ctx.registry.delete(def, namespace, name, options);
      if (result.removed && !def.returnDeletedObject) {
        sendJson(res, 200, successStatus({ name, group: def.group, kind: def.plural, uid: result.object.metadata.uid }));
      } else {
        sendJson(res, 200, result.object);
      }
      return;
    }
    default:
      throw methodNotAllowed(`${method} is not supported`);
  }
}
