/** The Kubernetes part: the node agent (`wasmlet kubelet`) and OCI distribution of wasm artifacts. */
export { NodeAgent, type NodeAgentDeps, type PodInfo } from './node-agent.ts';
export { nodeAgentOptionsSchema, parseNodeAgentOptions, WASMLET_ARCH, WASMLET_OS, TAINT_KEY, type NodeAgentOptions, type NodeAgentOptionsInput } from './options.ts';
export { registerKubeletCommand, chooseKubeconfig, parseTaints, parseLabels, type KubeletCliIo } from './cli.ts';
export { podMachine, type PodStateValue } from './pod-machine.ts';
export { parseCapabilityAnnotations, CAPABILITIES_ANNOTATION, LINKS_ANNOTATION, type LinkSpec } from './annotations.ts';
export { PodError, isPodError, KubeApiError, isKubeApiError } from './errors.ts';
export { createImagePuller, credentialsFromDockerConfigJson, parseImagePullerOptions, type ImagePuller, type ImagePullerOptions, type PulledImage, type PullPolicy, type RegistryCredentials } from './oci/puller.ts';
export { pushWasm, type PushWasmOptions, type PushResult } from './oci/pusher.ts';
export { registerPushCommand } from './oci/push-command.ts';
export { RegistryError, isRegistryError, type RegistryErrorCode } from './errors.ts';
export { parseImageReference, type ImageReference } from './oci/reference.ts';
export { startSandbox, registerSandboxCommand, SandboxRegistry, demoImage, DEMO_REGISTRY, type Sandbox, type SandboxOptionsInput, type SandboxCliIo } from './sandbox/index.ts';
