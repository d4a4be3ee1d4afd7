/** Kubernetes API test server: the REST and watch protocol, enough for kubectl and @kubernetes/client-node. */
export { startKubeApiServer, type KubeApiServer, type FaultSpec, type RequestRecord } from './server.ts';
export { kubeApiServerOptionsSchema, parseKubeApiServerOptions, type KubeApiServerOptions, type KubeApiServerOptionsInput } from './options.ts';
export { KubeStore, type StoreListOptions } from './kube-store.ts';
export { ApiError, isApiError, type StatusReason } from './api-error.ts';
export { generateTestCertificate, type TlsMaterial } from './tls.ts';
export { renderKubeconfig, writeKubeconfig, type KubeconfigParams } from './kubeconfig.ts';
export { RESOURCES, type ResourceDef } from './resources.ts';
export type { KubeObject, ObjectMeta, StoreEvent, WatchEventType } from './types.ts';
export type { PatchType } from './patch.ts';
