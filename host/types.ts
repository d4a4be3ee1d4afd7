/** Public types shared by the host, capability providers, the lattice and the node agent. */
import type { Logger } from 'pino';

/** waSCC's claims body (`wascap`), as found in an actor's JWT. */
export interface ActorClaims {
  jti: string;
  iat: number;
  /** Issuer: an account public key (`A…`). */
  iss: string;
  /** Subject: the module public key (`M…`); the actor's identity. */
  sub: string;
  exp?: number;
  nbf?: number;
  wascap: {
    name?: string;
    /** Uppercase hex SHA-256 of the module without its `jwt` section. */
    hash: string;
    tags?: string[];
    /** Capability contract ids the actor may call, e.g. `wascc:keyvalue`. */
    caps?: string[];
    rev?: number;
    ver?: string;
    prov?: boolean;
    [key: string]: unknown;
  };
}

/**
 * A link (waSCC's binding): allows `actor` to call `contract` under `linkName`, and configures
 * the provider for that actor through `values` (e.g. `PORT`, `URL`).
 */
export interface LinkDefinition {
  /** The actor's module key (`M…`). */
  actor: string;
  /** Canonical contract id (aliases are canonicalized when a link is put). */
  contract: string;
  /** `default` unless named. */
  linkName: string;
  /** Where the provider runs, when not on this host (lattice provider id). */
  provider?: string;
  values: Record<string, string>;
}

/** One log line of an actor, kept per actor so it can be read back (pod logs). */
export interface LogRecord {
  /** Milliseconds since the epoch. */
  time: number;
  level: 'trace' | 'debug' | 'info' | 'warn' | 'error';
  /** Where it came from: the guest's console, the logging contract, stdout/stderr of a WASI program, or the host. */
  stream: 'console' | 'log' | 'stdout' | 'stderr' | 'host';
  msg: string;
}

export interface LogReadOptions {
  /** Only the last N records present when reading starts. */
  tailLines?: number;
  /** Only records at or after this time (ms since epoch). */
  sinceMs?: number;
  /** Keep the stream open and yield new records as they arrive, until `signal` aborts. */
  follow?: boolean;
  signal?: AbortSignal;
}

/** Per-actor log lines, readable back (the kubelet serves them as container logs). */
export interface LogStore {
  append(actor: string, record: LogRecord): void;
  /** An AsyncIterable of records; with `follow`, it ends when `signal` aborts or `close(actor)` is called. */
  read(actor: string, options?: LogReadOptions): AsyncIterable<LogRecord>;
  /** Ends followers of `actor` and, when `forget`, drops its records. */
  close(actor: string, options?: { forget?: boolean }): void;
}

/** A call from an actor to a capability provider, after claims and link checks passed. */
export interface ProviderCall {
  /** The calling actor's module key. */
  actor: string;
  linkName: string;
  operation: string;
  msg: Uint8Array;
}

/** What the host hands a provider when it starts. */
export interface ProviderContext {
  hostId: string;
  logger: Logger;
  logs: LogStore;
  /**
   * Invoke `operation` on `actor` (e.g. `HandleRequest`). Resolves with the actor's response
   * bytes; rejects with an InvocationError (deadline, trap, guest error, not found…).
   */
  invokeActor(actor: string, operation: string, msg: Uint8Array, options?: { deadlineMs?: number; linkName?: string }): Promise<Uint8Array>;
}

/**
 * A capability provider. One instance serves one contract under one link name for every actor
 * linked to it; `putLink`/`deleteLink` tell it which actors and with which values.
 */
export interface CapabilityProvider {
  /** Canonical contract id, e.g. `wasmlet:keyvalue`. */
  readonly contract: string;
  /** Human-readable name, e.g. `http-server`. */
  readonly name: string;
  start(ctx: ProviderContext): Promise<void>;
  /** Configure the provider for an actor. Rejects (and keeps nothing) when values are invalid. */
  putLink(link: LinkDefinition): Promise<void>;
  deleteLink(link: LinkDefinition): Promise<void>;
  /** Serve an operation for a linked actor; rejects with an error whose message the actor sees. */
  handle(call: ProviderCall): Promise<Uint8Array>;
  stop(): Promise<void>;
  /**
   * Optional: lets actor workers answer a linked actor's calls to this provider themselves,
   * without a hop to the main thread (the provider keeps its state in shared memory). Asked
   * again whenever the actor's links or the provider change; undefined = calls take the normal path.
   */
  workerRoute?(actor: string, linkName: string): WorkerRoute | undefined;
}

/**
 * A worker route: `module` (a module URL) exports `createWorkerHandler(data, ctx)`, which returns a
 * synchronous `(operation, msg) => reply` handler; it throws an Error whose message the actor
 * sees, exactly as `handle` would reject. `data` must survive postMessage (e.g. a SharedArrayBuffer).
 * The module may also export `recoverThread(data, threadId)`: the host calls it on its main thread
 * once a worker that had the route has ended (however it ended), so that a lock the thread held
 * in shared memory is recovered; it returns what it did (`not-held` when there was nothing to do).
 */
export interface WorkerRoute {
  module: string;
  data: unknown;
}

/**
 * What a worker hands a route module: the host's msgpack codec, so the module need not load the
 * whole host part into every worker.
 */
export interface WorkerRouteContext {
  encode(value: unknown): Uint8Array;
  decode<T = unknown>(bytes: Uint8Array): T;
}

export type { Logger };
