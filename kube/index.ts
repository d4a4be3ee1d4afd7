/** The Kubernetes part: OCI distribution of wasm artifacts and the node agent. */
export { createImagePuller, credentialsFromDockerConfigJson, parseImagePullerOptions, type ImagePuller, type ImagePullerOptions, type PulledImage, type PullPolicy, type RegistryCredentials } from './oci/puller.ts';
export { pushWasm, type PushWasmOptions, type PushResult } from './oci/pusher.ts';
export { registerPushCommand } from './oci/push-command.ts';
export { RegistryError, isRegistryError, type RegistryErrorCode } from './oci/errors.ts';
export { parseImageReference, type ImageReference } from './oci/reference.ts';
