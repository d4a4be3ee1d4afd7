/**
 * A container's environment, resolved as the kubelet does: `envFrom` first, then `env` in order
 * (value with `$(VAR)` expansion, configMapKeyRef, secretKeyRef, fieldRef, resourceFieldRef).
 * A missing ConfigMap/Secret/key that is not optional is a CreateContainerConfigError (retried).
 */
import type { V1ConfigMap, V1Container, V1Pod, V1Secret } from '@kubernetes/client-node';
import { apiStatus, type KubeClients } from './kube-client.ts';
import { configMissing, podSpecError } from './errors.ts';

/** Reads ConfigMaps and Secrets of a namespace once per pod start. */
export interface ConfigSource {
  configMap(namespace: string, name: string): Promise<V1ConfigMap | undefined>;
  secret(namespace: string, name: string): Promise<V1Secret | undefined>;
}

/** A ConfigSource over the API, caching within one pod start; 404 is `undefined`. */
export function apiConfigSource(clients: KubeClients): ConfigSource {
  const cache = new Map<string, Promise<unknown>>();
  const once = <T>(key: string, load: () => Promise<T>): Promise<T | undefined> => {
    let p = cache.get(key) as Promise<T | undefined> | undefined;
    if (!p) {
      p = load().catch((err: unknown) => {
        cache.delete(key);
        if (apiStatus(err) === 404) return undefined;
        throw err;
      });
      cache.set(key, p);
    }
    return p;
  };
  return {
    configMap: (namespace, name) => once(`cm/${namespace}/${name}`, () => clients.core.readNamespacedConfigMap({ name, namespace })),
    secret: (namespace, name) => once(`secret/${namespace}/${name}`, () => clients.core.readNamespacedSecret({ name, namespace })),
  };
}

/** What fieldRef and the downward API can see besides the pod itself. */
export interface PodPlacement {
  nodeName: string;
  nodeAddress: string;
  /** The pod's own address (default: the node's). */
  podIP?: string;
}

const SUBSCRIPT = /^metadata\.(labels|annotations)\['([^']*)'\]$/;

/** The value of a downward API `fieldPath` for `pod`. Throws a fatal PodError for unsupported paths. */
export function fieldValue(pod: V1Pod, fieldPath: string, placement: PodPlacement): string {
  const m = pod.metadata ?? {};
  const sub = SUBSCRIPT.exec(fieldPath);
  if (sub) return (sub[1] === 'labels' ? m.labels : m.annotations)?.[sub[2]!] ?? '';
  switch (fieldPath) {
    case 'metadata.name':
      return m.name ?? '';
    case 'metadata.namespace':
      return m.namespace ?? '';
    case 'metadata.uid':
      return m.uid ?? '';
    case 'metadata.labels':
      return formatMap(m.labels);
    case 'metadata.annotations':
      return formatMap(m.annotations);
    case 'spec.nodeName':
      return pod.spec?.nodeName ?? placement.nodeName;
    case 'spec.serviceAccountName':
      return pod.spec?.serviceAccountName ?? '';
    case 'status.hostIP':
    case 'status.hostIPs':
      return placement.nodeAddress;
    case 'status.podIP':
    case 'status.podIPs':
      return placement.podIP ?? placement.nodeAddress;
    default:
      throw podSpecError(`fieldRef ${JSON.stringify(fieldPath)} is not supported`);
  }
}

/** `key="value"` lines, sorted, as the downward API writes label and annotation maps. */
function formatMap(map: Record<string, string> | undefined): string {
  return Object.keys(map ?? {})
    .sort()
    .map((k) => `${k}=${JSON.stringify(map![k])}`)
    .join('\n');
}

/** `$(VAR)` → value of VAR when defined; `$$` → `$`; anything else stays as written. */
export function expandVars(text: string, vars: Record<string, string>): string {
  return text.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (all, name: string | undefined) => {
    if (all === '$$') return '$';
    return name !== undefined && Object.hasOwn(vars, name) ? vars[name]! : all;
  });
}

function decodeSecret(value: string): string {
  return Buffer.from(value, 'base64').toString('utf8');
}

/** Resolves a container's env into an ordered record (later definitions replace earlier ones). */
export async function resolveEnv(pod: V1Pod, container: V1Container, source: ConfigSource, placement: PodPlacement): Promise<Record<string, string>> {
  const ns = pod.metadata?.namespace ?? 'default';
  const env: Record<string, string> = {};
  const where = `container ${container.name}`;
  for (const from of container.envFrom ?? []) {
    const prefix = from.prefix ?? '';
    if (from.configMapRef) {
      const cm = await source.configMap(ns, from.configMapRef.name ?? '');
      if (!cm) {
        if (from.configMapRef.optional) continue;
        throw configMissing(`${where}: configmap "${from.configMapRef.name}" not found`, container.name);
      }
      for (const [k, v] of Object.entries(cm.data ?? {})) env[prefix + k] = v;
    } else if (from.secretRef) {
      const s = await source.secret(ns, from.secretRef.name ?? '');
      if (!s) {
        if (from.secretRef.optional) continue;
        throw configMissing(`${where}: secret "${from.secretRef.name}" not found`, container.name);
      }
      for (const [k, v] of Object.entries(s.data ?? {})) env[prefix + k] = decodeSecret(v);
    }
  }
  for (const e of container.env ?? []) {
    const vf = e.valueFrom;
    if (!vf) {
      env[e.name] = expandVars(e.value ?? '', env);
      continue;
    }
    if (vf.configMapKeyRef) {
      const ref = vf.configMapKeyRef;
      const cm = await source.configMap(ns, ref.name ?? '');
      const value = cm?.data?.[ref.key] ?? (cm?.binaryData?.[ref.key] !== undefined ? decodeSecret(cm.binaryData[ref.key]!) : undefined);
      if (value === undefined) {
        if (ref.optional) continue;
        throw configMissing(cm ? `${where}: key "${ref.key}" not found in configmap "${ref.name}"` : `${where}: configmap "${ref.name}" not found`, container.name);
      }
      env[e.name] = value;
    } else if (vf.secretKeyRef) {
      const ref = vf.secretKeyRef;
      const s = await source.secret(ns, ref.name ?? '');
      const raw = s?.data?.[ref.key];
      const value = raw !== undefined ? decodeSecret(raw) : s?.stringData?.[ref.key];
      if (value === undefined) {
        if (ref.optional) continue;
        throw configMissing(s ? `${where}: key "${ref.key}" not found in secret "${ref.name}"` : `${where}: secret "${ref.name}" not found`, container.name);
      }
      env[e.name] = value;
    } else if (vf.fieldRef) {
      env[e.name] = fieldValue(pod, vf.fieldRef.fieldPath, placement);
    } else if (vf.resourceFieldRef) {
      const r = vf.resourceFieldRef.resource;
      const [kind, name] = r.split('.') as [string, string];
      const target = (pod.spec?.containers ?? []).find((c) => c.name === (vf.resourceFieldRef!.containerName || container.name));
      const res = kind === 'limits' ? target?.resources?.limits : target?.resources?.requests;
      env[e.name] = String(res?.[name] ?? '0');
    } else {
      throw podSpecError(`${where}: env ${e.name} has a valueFrom this node does not support`, container.name);
    }
  }
  return env;
}
