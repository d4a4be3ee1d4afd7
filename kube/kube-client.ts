/**
 * Access to the Kubernetes API through @kubernetes/client-node: the kubeconfig, the typed API
 * clients the agent uses, and helpers for errors and time formats.
 */
import { ApiException, AuthenticationV1Api, CoordinationV1Api, CoreV1Api, KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { OptionsError } from '../host/index.ts';

export interface KubeClients {
  config: KubeConfig;
  core: CoreV1Api;
  coordination: CoordinationV1Api;
  authentication: AuthenticationV1Api;
}

/**
 * A KubeConfig from an explicit file, or the in-cluster service account. (KUBECONFIG and
 * `~/.kube/config` are the CLI's business: it passes the file it chose.)
 */
export function loadKubeConfig(source: { kubeconfig?: string; inCluster?: boolean }): KubeConfig {
  const kc = new KubeConfig();
  try {
    if (source.kubeconfig) kc.loadFromFile(source.kubeconfig);
    else if (source.inCluster) kc.loadFromCluster();
    else throw new Error('no kubeconfig file given and not in-cluster');
  } catch (err) {
    throw new OptionsError(`cannot load the kubeconfig: ${(err as Error).message}`, { cause: err });
  }
  if (!kc.getCurrentCluster()) throw new OptionsError('the kubeconfig has no current cluster');
  return kc;
}

export function makeClients(config: KubeConfig): KubeClients {
  return {
    config,
    core: config.makeApiClient(CoreV1Api),
    coordination: config.makeApiClient(CoordinationV1Api),
    authentication: config.makeApiClient(AuthenticationV1Api),
  };
}

/** Request options that send a body as a JSON merge patch. */
export const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

/** The HTTP status of a failed API call, or undefined for transport errors. */
export function apiStatus(err: unknown): number | undefined {
  if (err instanceof ApiException) return err.code;
  const code = (err as { code?: unknown; statusCode?: unknown } | null)?.statusCode ?? (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

/** A short description of a failed API call, for logs and errors. */
export function apiErrorText(err: unknown): string {
  if (err instanceof ApiException) {
    try {
      const body = typeof err.body === 'string' ? JSON.parse(err.body) : err.body;
      if (body && typeof body.message === 'string') return `${err.code}: ${body.message}`;
    } catch {
      // not JSON: fall through
    }
    return `HTTP ${err.code}`;
  }
  return err instanceof Error ? err.message : String(err);
}

/** metav1.Time: RFC 3339 with seconds. */
export function kubeTime(ms = Date.now()): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

/** metav1.MicroTime: RFC 3339 with six fractional digits. */
export function microTime(ms = Date.now()): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}
