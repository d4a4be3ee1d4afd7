/**
 * Errors of the node agent. Each has a stable `code`, keeps its `cause`, and says how the pod it
 * concerns is treated: `reason` is the CamelCase word Kubernetes shows (pod or container status,
 * Events), and `fatal` errors fail the pod for good while the others are retried with backoff.
 * OCI distribution errors (pulling and pushing wasm artifacts) are RegistryErrors, below.
 */
import { WasmletError } from '../host/index.ts';

export type PodErrorCode =
  | 'INVALID_ANNOTATION' // a wasmlet.dev/* annotation that cannot be read
  | 'LINK_NOT_CLAIMED' // a link the actor's claims do not allow
  | 'ACTOR_REJECTED' // the image is not an actor this host loads (bad signature, corrupt, unknown format)
  | 'INVALID_POD_SPEC' // something in the pod spec this node cannot run (hostPath file, unknown volume…)
  | 'CONFIG_MISSING' // a ConfigMap, Secret or key the pod refers to does not exist (yet)
  | 'LINK_REFUSED' // a provider refused a link's values (port in use…)
  | 'START_FAILED'; // anything else that stopped a container from starting

export class PodError extends WasmletError {
  declare readonly code: PodErrorCode;
  /** Kubernetes-style reason, e.g. `LinkNotClaimed`, `CreateContainerConfigError`. */
  readonly reason: string;
  /** Fatal: the pod fails (phase Failed). Otherwise the start is retried with backoff. */
  readonly fatal: boolean;
  /** The container concerned, when there is one. */
  readonly container: string | undefined;
  constructor(code: PodErrorCode, message: string, options: { reason: string; fatal: boolean; container?: string; cause?: unknown }) {
    super(code, message, { cause: options.cause });
    this.name = 'PodError';
    this.reason = options.reason;
    this.fatal = options.fatal;
    this.container = options.container;
  }
}

/** A malformed capability annotation: fails the pod. */
export function annotationError(key: string, message: string, cause?: unknown): PodError {
  return new PodError('INVALID_ANNOTATION', `annotation ${key}: ${message}`, { reason: 'InvalidCapabilityAnnotation', fatal: true, cause });
}

/** A pod spec this node cannot run: fails the pod. */
export function podSpecError(message: string, container?: string, cause?: unknown): PodError {
  return new PodError('INVALID_POD_SPEC', message, { reason: 'UnsupportedPodSpec', fatal: true, container, cause });
}

/** A missing ConfigMap/Secret/key: retried, as the kubelet does (CreateContainerConfigError). */
export function configMissing(message: string, container?: string, cause?: unknown): PodError {
  return new PodError('CONFIG_MISSING', message, { reason: 'CreateContainerConfigError', fatal: false, container, cause });
}

/** Talking to the Kubernetes API failed (network, 5xx…); callers retry. */
export class KubeApiError extends WasmletError {
  /** HTTP status, when the server answered. */
  readonly status: number | undefined;
  constructor(message: string, options: { status?: number; cause?: unknown } = {}) {
    super('KUBE_API', message, { cause: options.cause });
    this.name = 'KubeApiError';
    this.status = options.status;
  }
}

export function isPodError(err: unknown): err is PodError {
  return err instanceof PodError;
}
export function isKubeApiError(err: unknown): err is KubeApiError {
  return err instanceof KubeApiError;
}

// ---------------------------------------------------------------- OCI distribution

export type RegistryErrorCode =
  | 'BAD_REFERENCE' // the image reference cannot be parsed
  | 'NOT_FOUND' // no such repository, tag, manifest or blob
  | 'UNAUTHORIZED' // credentials missing, rejected, or not allowed this repository
  | 'DIGEST_MISMATCH' // bytes do not hash to the digest they were asked for (or sizes differ)
  | 'UNREACHABLE' // connection refused, DNS failure, TLS failure, timeout
  | 'BAD_MANIFEST' // the manifest (or a registry answer) is not what the distribution spec says
  | 'NOT_WASM' // a valid image, but not a wasm artifact
  | 'NOT_CACHED' // pull policy Never and the image is not in the cache
  | 'LOCAL_FILES_DISABLED' // a file:// reference while allowLocalFiles is off
  | 'LOCAL_FILE' // a file:// reference that cannot be read
  | 'BAD_CREDENTIALS' // a docker config (dockerconfigjson / dockercfg) that cannot be read
  | 'TOO_LARGE' // a manifest or blob larger than the configured limit
  | 'REGISTRY_ERROR' // any other error answer from the registry (5xx, unexpected status)
  | 'ABORTED'; // the caller's AbortSignal fired

export class RegistryError extends WasmletError {
  declare readonly code: RegistryErrorCode;
  /** HTTP status of the registry answer that caused this, when there was one. */
  readonly status: number | undefined;
  constructor(code: RegistryErrorCode, message: string, options?: { cause?: unknown; status?: number }) {
    super(code, message, options);
    this.name = 'RegistryError';
    this.status = options?.status;
  }
}

export function isRegistryError(err: unknown): err is RegistryError {
  return err instanceof RegistryError;
}
