/**
 * The runtime interface shared by every kind of workload (waPC core modules, components, WASI
 * commands). The main thread `prepare`s an actor once (compile, transpile); workers
 * `instantiate` the prepared form as many times as the pool needs.
 */

export type ActorKind = 'wapc' | 'component' | 'wasi';

/** What a worker needs to instantiate an actor. Must be structured-cloneable (WebAssembly.Module is). */
export interface PreparedActor {
  kind: ActorKind;
  /** Runtime-specific payload, e.g. `{ module }` for waPC. */
  payload: unknown;
}

/** Limits an actor is prepared with. */
export interface PrepareOptions {
  /**
   * Linear memory one instance may have, in MiB: every memory the actor's core modules define
   * gets this maximum (see memory-limit.ts). Undefined: the modules' own maximums.
   */
  maxMemoryMiB?: number;
}

/** Main-thread side of a runtime. */
export interface ActorRuntime {
  readonly kind: ActorKind;
  /** True when `module` (already compiled, or undefined for non-core binaries) is this runtime's format. */
  detect(bytes: Uint8Array, module: WebAssembly.Module | undefined): boolean;
  /**
   * Validate and prepare; throws ActorLoadError naming what is wrong. A core module arrives with
   * its memory limit applied already (bytes and module); other formats apply it themselves.
   */
  prepare(bytes: Uint8Array, module: WebAssembly.Module | undefined, options?: PrepareOptions): Promise<PreparedActor>;
}

/** Result of a host call as the guest sees it. */
export type HostCallResult = { ok: Uint8Array } | { error: string };

export type GuestLogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error';

/** Size caps a worker enforces on what crosses between a guest and the host. */
export interface GuestLimits {
  /** Largest host-call payload a guest may send (and reply it may get), bytes. */
  hostCallBytes: number;
  /** Largest response a guest may answer an invocation with, bytes. */
  responseBytes: number;
}

/** What a worker hands a guest instance. */
export interface GuestEnv {
  actor: string;
  /** Size caps; a runtime checks them before it copies anything out of guest memory. */
  limits: GuestLimits;
  /** Synchronous: blocks the worker (never the main thread) until the host answers or the deadline passes. */
  hostCall(binding: string, namespace: string, operation: string, payload: Uint8Array): HostCallResult;
  log(level: GuestLogLevel, message: string): void;
  /** Configuration values the actor was started with (components read them); absent when none were given. */
  config?: Readonly<Record<string, string>>;
}

/** A guest answered with more bytes than its response cap: nothing was copied, the instance stays usable. */
export class ResponseTooLarge extends Error {
  constructor(
    readonly bytes: number,
    readonly limit: number,
  ) {
    super(`the actor's response is ${bytes} bytes, over the limit of ${limit} (maxResponseBytes)`);
    this.name = 'ResponseTooLarge';
  }
}

/** The error a guest sees for a host-call payload past its cap (the payload is neither copied nor sent). */
export function hostCallTooLarge(bytes: number, limit: number): string {
  return `host call refused: the payload is ${bytes} bytes, over the limit of ${limit} (maxHostCallBytes)`;
}

/** The error a guest sees for a host-call reply past the same cap (it is not handed over). */
export function hostReplyTooLarge(bytes: number, limit: number): string {
  return `host call reply refused: it is ${bytes} bytes, over the limit of ${limit} (maxHostCallBytes)`;
}

/** A guest's own error answer (waPC `__guest_error`): the instance stays usable. */
export class GuestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GuestError';
  }
}

/** One live instance inside a worker. A throw other than GuestError is a trap: the instance is discarded. */
export interface GuestInstance {
  call(operation: string, payload: Uint8Array): Uint8Array;
  /** Bytes of linear memory the instance holds now (all its memories). */
  memoryBytes(): number;
}

/** Worker-thread side of a runtime. */
export interface GuestFactory {
  readonly kind: ActorKind;
  /**
   * Optional asynchronous step, run once per worker when the actor is loaded there (e.g. importing
   * a component's ES module glue). Its result replaces the payload given to `instantiate`; the
   * worker runs no call for the actor before it settles. Rejecting fails the actor's calls there.
   */
  load?(payload: unknown): Promise<unknown>;
  instantiate(payload: unknown, env: GuestEnv): GuestInstance;
}
