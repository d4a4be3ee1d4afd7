/**
 * Endpoints of Services, as the endpoint-slice and endpoints controllers write them: for a Service
 * with a selector, one EndpointSlice (`kubernetes.io/service-name`, owned by the Service) listing
 * each selected pod that has an IP, with `conditions.ready` = the pod's Ready condition (a pod that
 * is not Ready is listed with `ready: false`, as the real controller lists it, so clients send it
 * nothing), `serving` and `terminating`; ports resolve a Service's `targetPort` (number or the
 * name of a container port). The legacy Endpoints object says the same with `addresses` and
 * `notReadyAddresses`.
 */
import type { Logger } from 'pino';
import type { KubeStore } from '../kube-store.ts';
import { matchesLabels } from '../selectors.ts';
import { deepEqual, isPlainObject, type KubeObject, type StoreEvent } from '../types.ts';
import { Controller, isPodReady, keyOf, mapRequirements, ownerReference, splitKey } from './queue.ts';

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (isPlainObject(v) ? v : {});
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';
const MANAGED_BY = { 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io' };

interface SlicePort {
  name?: string;
  port: number;
  protocol: string;
}

/** The pod's port for a Service port's targetPort, or undefined when the pod has none by that name. */
function targetPortOf(pod: KubeObject, target: unknown): number | undefined {
  if (typeof target === 'number') return target;
  if (typeof target === 'string' && /^\d+$/.test(target)) return Number(target);
  for (const c of arr(obj(pod.spec).containers)) for (const p of arr(obj(c).ports)) if (obj(p).name === target) return Number(obj(p).containerPort);
  return undefined;
}

export class EndpointsController extends Controller {
  constructor(store: KubeStore, logger: Logger) {
    super(store, logger, 'endpoints', 'services');
  }

  protected keysFor(e: StoreEvent): string[] {
    if (e.resource === 'services') return [keyOf(e.object)];
    return e.resource === 'pods' ? this.store.list('services', { namespace: e.object.metadata.namespace }).map(keyOf) : [];
  }

  protected sync(key: string): void {
    const [ns, name] = splitKey(key);
    const svc = this.store.get('services', ns, name);
    const existing = this.store.list('endpointslices', { namespace: ns, labelSelector: `${SERVICE_NAME_LABEL}=${name}` });
    const selector = svc && !svc.metadata.deletionTimestamp ? mapRequirements(obj(svc.spec).selector) : undefined;
    if (!svc || !selector) {
      // Gone, or a Service without a selector (its endpoints are someone else's to write).
      if (!svc) {
        for (const s of existing) this.store.delete('endpointslices', ns, s.metadata.name!);
        if (this.store.get('endpoints', ns, name)) this.store.delete('endpoints', ns, name);
      }
      return;
    }
    const servicePorts = arr(obj(svc.spec).ports).map(obj);
    const pods = this.store
      .list('pods', { namespace: ns })
      .filter((p) => matchesLabels(selector, p.metadata.labels) && typeof obj(p.status).podIP === 'string' && obj(p.status).podIP && !['Succeeded', 'Failed'].includes(String(obj(p.status).phase)))
      .sort((a, b) => String(a.metadata.name).localeCompare(String(b.metadata.name)));
    const endpoints: unknown[] = [];
    let ports: SlicePort[] | undefined;
    const subsetReady: Obj[] = [];
    const subsetNotReady: Obj[] = [];
    for (const pod of pods) {
      const mine = servicePorts.map((sp) => ({ ...(typeof sp.name === 'string' && sp.name ? { name: sp.name } : {}), port: targetPortOf(pod, sp.targetPort ?? sp.port), protocol: String(sp.protocol ?? 'TCP') }));
      if (mine.some((p) => p.port === undefined)) continue; // a named targetPort this pod does not have
      ports ??= mine as SlicePort[];
      if (!deepEqual(ports, mine)) continue; // one slice per port mapping; pods mapping ports differently are left out
      const terminating = pod.metadata.deletionTimestamp !== undefined;
      const ready = isPodReady(pod) && !terminating;
      const ip = String(obj(pod.status).podIP);
      const targetRef = { kind: 'Pod', namespace: ns, name: pod.metadata.name, uid: pod.metadata.uid };
      const nodeName = obj(pod.spec).nodeName;
      endpoints.push({ addresses: [ip], conditions: { ready, serving: isPodReady(pod), terminating }, targetRef, ...(typeof nodeName === 'string' ? { nodeName } : {}) });
      (ready ? subsetReady : subsetNotReady).push({ ip, targetRef, ...(typeof nodeName === 'string' ? { nodeName } : {}) });
    }
    const sliceName = `${name}-${svc.metadata.uid!.slice(0, 5)}`;
    const slice = {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: sliceName, namespace: ns, labels: { [SERVICE_NAME_LABEL]: name, ...MANAGED_BY }, ownerReferences: [ownerReference(svc)] },
      addressType: 'IPv4',
      endpoints,
      ports: ports ?? [],
    };
    this.#put('endpointslices', slice);
    for (const s of existing) if (s.metadata.name !== sliceName) this.store.delete('endpointslices', ns, s.metadata.name!);
    const legacyPorts = (ports ?? []).map((p) => ({ ...p }));
    this.#put('endpoints', {
      apiVersion: 'v1',
      kind: 'Endpoints',
      metadata: { name, namespace: ns, labels: { ...svc.metadata.labels } },
      subsets: endpoints.length ? [{ ...(subsetReady.length ? { addresses: subsetReady } : {}), ...(subsetNotReady.length ? { notReadyAddresses: subsetNotReady } : {}), ports: legacyPorts }] : [],
    });
  }

  /** Creates the object, or replaces what it says when that changed. */
  #put(resource: string, want: { metadata: { name: string; namespace: string; labels?: Record<string, string> } } & Obj): void {
    const have = this.store.get(resource, want.metadata.namespace, want.metadata.name);
    if (!have) {
      this.store.create(resource, want);
      return;
    }
    const { metadata: _m, ...body } = want;
    const { metadata: _h, apiVersion: _a, kind: _k, ...current } = have;
    const { apiVersion: _wa, kind: _wk, ...wanted } = body;
    if (deepEqual(current, wanted) && deepEqual(have.metadata.labels, (want.metadata as Obj).labels)) return;
    this.store.update(resource, { ...have, ...body, metadata: { ...have.metadata, labels: (want.metadata as Obj).labels as Record<string, string> } });
  }
}
