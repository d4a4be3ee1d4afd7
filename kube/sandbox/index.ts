/** The sandbox: a single-node Kubernetes API sandbox with a wasmlet node, for trying wasmlet and for tests. */
export { startSandbox, sandboxOptionsSchema, type Sandbox, type SandboxOptionsInput } from './sandbox.ts';
export { registerSandboxCommand, type SandboxCliIo } from './cli.ts';
export { SandboxRegistry, type SandboxRegistryOptions } from './registry.ts';
export { DEMO_REGISTRY, SHIPPED_DEMOS, BUILT_DEMOS, demoImage, PROJECT_ROOT } from './demos.ts';
