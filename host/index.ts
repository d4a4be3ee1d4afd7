/** The host part: load and run signed actors, links, routing, the bus. */
export { Host, type ActorInfo, type HostDeps } from './host.ts';
export { parseHostOptions, hostOptionsSchema, parseWith, describeIssues, parseActorStartOptions, type HostOptions, type HostOptionsInput, type ActorStartOptions, type ActorStartOptionsInput } from './options.ts';
export { InProcessBus, actorTarget, providerTarget, type Bus, type BusInvocation, type BusHandler, type BusSubscription, type BusTarget } from './bus.ts';
export { MemoryLinkStore, normalizeLink, linkKey, type LinkStore, type LinkEvent } from './links.ts';
export { MemoryLogStore, parseLogStoreOptions, type LogStoreOptions } from './log-store.ts';
export { HTTP_SERVER, KEY_VALUE, LOGGING, DEFAULT_LINK_NAME, canonicalContract, sameContract, normalizeLinkName } from './contracts.ts';
export { encode, decode, asBytes, DecodeError } from './codec.ts';
export * from './errors.ts';
export type * from './types.ts';
export { readClaims, verifyActor, signActor, inspectActor, computeModuleHash, type VerifiedActor, type VerifyOptions, type SignActorOptions, type SignedActor, type ActorInspection } from './claims/claims.ts';
export { generateKeyPair, keyKind, isPublicKey, type KeyKind, type GeneratedKeyPair } from './claims/keys.ts';
export { customSection, stripCustomSections, appendCustomSection } from './claims/wasm-sections.ts';
export { WorkerPool, type WorkerPoolOptions } from './worker/worker-pool.ts';
export { GuestError, type ActorRuntime, type ActorKind, type PreparedActor, type GuestFactory, type GuestInstance, type GuestEnv } from './runtime/runtime.ts';
export { wapcRuntime } from './runtime/wapc.ts';
export { actorMachine } from './actor-machine.ts';
export { providerMachine } from './provider-machine.ts';
