/**
 * What the node agent needs from OCI pulls, and the pod side of them: the pull policy a container
 * gets, and the registry credentials of its `imagePullSecrets`.
 *
 * The puller itself (OCI distribution, disk cache, local files behind a flag) is `oci/puller.ts`;
 * the agent takes any `ImagePuller` (tests hand in fakes).
 */
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import type { ConfigSource } from './env.ts';
import { credentialsFromDockerConfigJson, type PullPolicy, type RegistryCredentials } from './oci/puller.ts';

export type { ImagePuller, PulledImage, PullPolicy, RegistryCredentials } from './oci/puller.ts';

/** The container's pull policy; unset, it is defaulted as the API server does (Always for `:latest` or no tag). */
export function pullPolicyOf(container: V1Container): PullPolicy {
  const p = container.imagePullPolicy;
  if (p === 'Always' || p === 'IfNotPresent' || p === 'Never') return p;
  const image = container.image ?? '';
  if (image.includes('@')) return 'IfNotPresent';
  const slash = image.lastIndexOf('/');
  const colon = image.lastIndexOf(':');
  const tag = colon > slash ? image.slice(colon + 1) : '';
  return tag === '' || tag === 'latest' ? 'Always' : 'IfNotPresent';
}

/**
 * Credentials from the pod's `imagePullSecrets` (types kubernetes.io/dockerconfigjson and
 * kubernetes.io/dockercfg). A missing or unreadable secret is skipped, as the kubelet does: the
 * pull then fails on its own if it needed them.
 */
export async function pullCredentials(pod: V1Pod, source: ConfigSource, warn: (msg: string) => void): Promise<RegistryCredentials[]> {
  const ns = pod.metadata?.namespace ?? 'default';
  const out: RegistryCredentials[] = [];
  for (const ref of pod.spec?.imagePullSecrets ?? []) {
    if (!ref.name) continue;
    const secret = await source.secret(ns, ref.name);
    if (!secret) {
      warn(`image pull secret ${ns}/${ref.name} not found`);
      continue;
    }
    const field = secret.type === 'kubernetes.io/dockercfg' ? '.dockercfg' : '.dockerconfigjson';
    const data = secret.data?.[field];
    if (!data) {
      warn(`image pull secret ${ns}/${ref.name} has no ${field}`);
      continue;
    }
    try {
      out.push(...credentialsFromDockerConfigJson(Buffer.from(data, 'base64').toString('utf8')));
    } catch (err) {
      warn(`image pull secret ${ns}/${ref.name}: ${(err as Error).message}`);
    }
  }
  return out;
}
