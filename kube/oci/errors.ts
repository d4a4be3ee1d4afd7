/**
 * Errors of OCI distribution (pulling and pushing wasm artifacts). Each carries a stable `code`
 * and the underlying `cause`; they are WasmletErrors, so the CLI prints them with their code.
 */
import { WasmletError } from '../../host/index.ts';

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
