/**
 * The actor host: verifies and loads actors, runs them in the worker pool, keeps links, and
 * routes invocations: actor → provider (host calls, checked against claims and links at call
 * time) and provider → actor. Local-first: targets on this host are called directly; anything
 * else goes over the bus.
 *
 * Claims hold everywhere: a link is refused when the actor's claims (its own, or the ones the
 * lattice recorded, `ClaimsSource`) do not name its contract; a link is applied to a provider on
 * this host only once the actor's claims are known and name it; a provider calls an actor only
 * when the actor claims the provider's contract; and a call from another host to a provider here
 * is served only for an actor that claims the contract and is linked to it.
 *
 * Instances: an actor's signed identity is its module key (`M…`); a running copy of it is an
 * instance, keyed by its instance id, with its own links, config, logs, status and trap count.
 * Everything the host keys by "actor" (links, invocations, logs, bus targets, worker pool
 * entries) is keyed by the instance id. By default the instance id is the module key (one
 * instance per actor, as waSCC had); `startActor(bytes, { instance })` starts more copies of one
 * module side by side (a pod's container: `namespace/pod/container`), sharing its compiled form.
 */
import { EventEmitter } from 'node:events';
import { createActor, type Actor } from 'xstate';
import type { Logger } from 'pino';
import { actorMachine } from './actor-machine.ts';
import { ActorCalls, callAliasOf, claimsDirectory, isActorNamespace, type ActorDirectory } from './actor-calls.ts';
import { actorTarget, InProcessBus, providerTarget, type Bus, type BusInvocation, type BusSubscription } from './bus.ts';
import { verifyActor } from './claims/claims.ts';
import { MemoryClaimsSource, type ClaimsSource } from './claims-source.ts';
import { generateKeyPair } from './claims/keys.ts';
import { canonicalContract, normalizeLinkName } from './contracts.ts';
import { ActorLoadError, InvocationError, WasmletError } from './errors.ts';
import { MemoryLinkStore, normalizeLink, type LinkEvent, type LinkStore } from './links.ts';
import { MemoryLogStore } from './log-store.ts';
import { parseActorStartOptions, parseHostOptions, type ActorStartOptionsInput, type HostOptions, type HostOptionsInput } from './options.ts';
import { createProviderActor, stopProviderActor, untilRunning, type ProviderActor } from './provider-machine.ts';
import type { ActorRuntime, PrepareOptions, PreparedActor } from './runtime/runtime.ts';
import { wapcRuntime } from './runtime/wapc.ts';
import { componentRuntime } from './runtime/component.ts';
import { prepareActor } from './runtime/prepare.ts';
import type { ActorClaims, CapabilityProvider, LinkDefinition, LogStore, ProviderContext, WorkerRoute } from './types.ts';
import type { GuestLogLine } from './worker/protocol.ts';
import { WorkerPool } from './worker/worker-pool.ts';

/** What the host is handed (transports and stores are injected; defaults are in-memory). */
export interface HostDeps {
  logger: Logger;
  bus?: Bus;
  links?: LinkStore;
  logs?: LogStore;
  /** Where claims of actors on other hosts are learned, and this host's are recorded. Default: in memory. */
  claims?: ClaimsSource;
  runtimes?: ActorRuntime[];
  /** Where actor-to-actor calls find targets that are not on this host, or named by call alias (default: the claims source). */
  actors?: ActorDirectory;
}

export type HostEventType = 'actor_started' | 'actor_stopped' | 'actor_start_failed' | 'provider_started' | 'provider_stopped' | 'link_put' | 'link_deleted';

export interface HostEvent {
  type: HostEventType;
  data: Record<string, unknown>;
}

/** One running instance of an actor. */
export interface ActorInfo {
  /** The instance id: what links, invocations and logs name. The module key unless started with `instance`. */
  id: string;
  /** The module key (`M…`): the actor's signer-verified identity. */
  module: string;
  name: string;
  issuer: string;
  caps: string[];
  kind: string;
  state: string;
  instances: number;
  maxInstances: number;
  /** Calls of this actor that run at once (its share of the workers). */
  maxConcurrency: number;
  /** Linear memory one instance may have, MiB. */
  maxMemoryMiB: number;
  deadlineMs: number;
  traps: number;
}

interface ActorEntry {
  /** Instance id. */
  id: string;
  /** Module key. */
  module: string;
  claims: ActorClaims;
  caps: Set<string>;
  prepared: PreparedActor;
  maxInstances: number;
  maxConcurrency: number;
  maxMemoryMiB: number;
  deadlineMs: number;
  config: Record<string, string>;
  machine: Actor<typeof actorMachine>;
  log: Logger;
  sub?: BusSubscription;
  /** Key of the shared prepared module. */
  preparedKey: string;
}

/** A compiled actor shared by the instances of one module. */
interface SharedPrepared {
  prepared: Promise<PreparedActor>;
  users: number;
}

const MODULE_KEY = /^M[A-Z2-7]{55}$/;

interface ProviderEntry {
  provider: CapabilityProvider;
  linkName: string;
  machine: ProviderActor;
  sub?: BusSubscription;
}

const providerKey = (contract: string, linkName: string) => `${contract}|${linkName}`;

export class Host {
  readonly id: string;
  readonly options: HostOptions;
  readonly logger: Logger;
  readonly bus: Bus;
  readonly links: LinkStore;
  readonly logs: LogStore;
  readonly claims: ClaimsSource;
  readonly #runtimes: ActorRuntime[];
  readonly #pool: WorkerPool;
  readonly #actors = new Map<string, ActorEntry>();
  /** Instance ids being started (claimed before the async compile, so two starts cannot race). */
  readonly #starting = new Set<string>();
  readonly #prepared = new Map<string, SharedPrepared>();
  readonly #providers = new Map<string, ProviderEntry>();
  readonly #unsubscribeLinks: () => void;
  readonly #unsubscribeClaims: () => void;
  /** Links for local providers that wait for their actor's claims to be known, by link key. */
  readonly #awaitingClaims = new Map<string, LinkDefinition>();
  readonly #actorCalls: ActorCalls;
  #stopped = false;

  private constructor(options: HostOptions, deps: HostDeps) {
    this.options = options;
    this.id = options.hostId ?? generateKeyPair('server').publicKey;
    this.logger = deps.logger.child({ host: this.id });
    this.bus = deps.bus ?? new InProcessBus();
    this.links = deps.links ?? new MemoryLinkStore();
    this.logs = deps.logs ?? new MemoryLogStore();
    this.claims = deps.claims ?? new MemoryClaimsSource();
    this.#runtimes = deps.runtimes ?? [wapcRuntime, componentRuntime];
    this.#pool = new WorkerPool({
      size: options.workers,
      logger: this.logger,
      maxHostCallBytes: options.maxHostCallBytes,
      maxResponseBytes: options.maxResponseBytes,
      hostCall: (actor, binding, ns, op, payload, deadline) => this.#hostCall(actor, binding, ns, op, payload, deadline),
      onLogs: (actor, lines) => this.#guestLogs(actor, lines),
      onFailure: (actor, _code, message) => this.#actors.get(actor)?.machine.send({ type: 'TRAP', error: message }),
    });
    this.#unsubscribeLinks = this.links.subscribe((e) => this.#onLinkEvent(e));
    this.#unsubscribeClaims = this.claims.subscribe((c) => this.#onClaims(c.sub));
    this.#actorCalls = new ActorCalls({
      bus: this.bus,
      directory: deps.actors ?? claimsDirectory(this.claims),
      local: {
        claims: (id) => this.#actors.get(id)?.claims,
        byAlias: (alias) => [...this.#actors.values()].find((e) => callAliasOf(e.claims) === alias)?.id,
        invoke: (id, op, msg, deadlineMs) => this.#pool.invoke(id, op, msg, deadlineMs),
      },
    });
  }

  /** Starts a host: validates options and starts its workers. */
  static async start(options: HostOptionsInput, deps: HostDeps): Promise<Host> {
    const host = new Host(parseHostOptions(options), deps);
    await host.#pool.ready();
    host.logger.info({ workers: options.workers, lattice: host.options.lattice }, 'host started');
    if (host.options.workers === 1) host.logger.warn('one worker: an actor call that spins holds it, and every other actor waits, until its deadline (use 2 or more for fair share)');
    return host;
  }

  // ---------------------------------------------------------------- actors

  /**
   * Verifies, compiles and starts an actor instance (by default the instance id is the module
   * key); resolves with its info. Rejects with ClaimsError/ActorLoadError naming the reason.
   */
  async startActor(bytes: Uint8Array, options: ActorStartOptionsInput = {}): Promise<ActorInfo> {
    this.#assertRunning();
    const opts = parseActorStartOptions(options);
    if (this.options.workers === 0) throw new ActorLoadError('this host runs no actors (workers: 0); start the actor on another host of the lattice');
    const machine = createActor(actorMachine, { input: { actor: '(unverified)' } }).start();
    let claimed: string | undefined;
    let preparedKey: string | undefined;
    try {
      const verified = verifyActor(bytes, { issuers: this.options.issuers });
      const module = verified.subject;
      const id = opts.instance ?? module;
      const name = verified.claims.wascap.name ?? 'unnamed';
      const label = id === module ? `actor ${id} (${name})` : `instance ${id} of actor ${module} (${name})`;
      if (id !== module && MODULE_KEY.test(id)) throw new ActorLoadError(`instance id ${id} is another actor's module key; an instance id that is a module key must be the actor's own (${module})`);
      if (this.#actors.has(id) || this.#starting.has(id)) throw new ActorLoadError(`${label} is already running on this host`);
      this.#starting.add(id);
      claimed = id;
      const maxMemoryMiB = opts.maxMemoryMiB ?? this.options.maxMemoryMiB;
      // The prepared form carries the memory limit: instances share it only when their limits agree.
      const key = `${module}|${verified.claims.wascap.hash}|${maxMemoryMiB}`;
      const prepared = await this.#prepare(key, bytes, { maxMemoryMiB }, () => (preparedKey = key));
      // Recorded before the actor serves, so that any member can check links and calls against them.
      await this.claims.record(verified.token, verified.claims).catch((err: unknown) => this.logger.warn({ err: (err as Error).message, actor: id }, 'could not record the actor\'s claims for other members'));
      const maxInstances = Math.min(opts.maxInstances ?? this.options.maxInstances ?? this.options.workers, this.options.workers);
      const maxConcurrency = Math.min(opts.maxConcurrency ?? this.options.maxConcurrency ?? Math.max(1, this.options.workers - 1), this.options.workers);
      const deadlineMs = opts.deadlineMs ?? this.options.deadlineMs;
      const entry: ActorEntry = {
        id,
        module,
        claims: verified.claims,
        caps: new Set((verified.claims.wascap.caps ?? []).map(canonicalContract)),
        prepared,
        maxInstances,
        maxConcurrency,
        maxMemoryMiB,
        deadlineMs,
        config: opts.config,
        machine,
        log: this.logger.child(id === module ? { actor: id } : { actor: id, module }),
        preparedKey: key,
      };
      this.#pool.register(id, prepared, { maxInstances, maxConcurrency, deadlineMs, config: opts.config });
      this.#actors.set(id, entry);
      this.#starting.delete(id);
      claimed = undefined;
      preparedKey = undefined;
      this.#syncRoutes(id);
      entry.sub = this.bus.serve(actorTarget(id), (inv) => this.#pool.invoke(id, inv.operation, inv.msg, inv.deadline - Date.now()));
      machine.send({ type: 'LOADED', actor: id });
      this.#onClaims(id);
      this.#emit('actor_started', { actor: id, module, name: verified.claims.wascap.name ?? '', claims: verified.claims });
      entry.log.info({ name: verified.claims.wascap.name, caps: verified.claims.wascap.caps ?? [], kind: prepared.kind, maxInstances, maxConcurrency, maxMemoryMiB }, id === module ? 'actor started' : 'actor instance started');
      if (maxConcurrency >= this.options.workers && this.options.workers > 1 && maxInstances >= this.options.workers) {
        entry.log.warn({ maxConcurrency, workers: this.options.workers }, 'this actor may occupy every worker: a call of it that spins starves every other actor until its deadline');
      }
      return this.#info(entry);
    } catch (err) {
      if (claimed !== undefined) this.#starting.delete(claimed);
      if (preparedKey !== undefined) this.#release(preparedKey);
      machine.send({ type: 'FAILED', error: (err as Error).message });
      this.#emit('actor_start_failed', { error: (err as Error).message, code: (err as WasmletError).code });
      this.logger.warn({ err: (err as Error).message, code: (err as WasmletError).code }, 'actor refused');
      throw err;
    }
  }

  /**
   * The compiled form of a module, shared by its instances (compiled once while any of them
   * runs). `onUse` runs once this start holds a reference (to release it when the start fails).
   */
  async #prepare(key: string, bytes: Uint8Array, options: PrepareOptions, onUse: () => void): Promise<PreparedActor> {
    let shared = this.#prepared.get(key);
    if (!shared) {
      const prepared = prepareActor(this.#runtimes, bytes, options);
      shared = { prepared, users: 0 };
      this.#prepared.set(key, shared);
      // A module that fails to compile is not kept: the next start tries again.
      prepared.catch(() => {
        if (this.#prepared.get(key)?.prepared === prepared) this.#prepared.delete(key);
      });
    }
    shared.users++;
    onUse();
    return shared.prepared;
  }

  #release(key: string): void {
    const shared = this.#prepared.get(key);
    if (shared && --shared.users <= 0) this.#prepared.delete(key);
  }

  /** Stops an actor instance: no new calls, in-flight calls get up to `drainMs` (default: the host's), then it is unloaded. */
  async stopActor(actor: string, options: { drainMs?: number } = {}): Promise<void> {
    const entry = this.#actors.get(actor);
    if (!entry) throw new InvocationError('ACTOR_NOT_FOUND', `actor ${actor} is not running on this host`);
    entry.machine.send({ type: 'STOP' });
    entry.sub?.close();
    await this.#pool.unregister(actor, options.drainMs ?? this.options.drainMs);
    this.#actors.delete(actor);
    this.#release(entry.preparedKey);
    entry.machine.send({ type: 'STOPPED' });
    this.logs.close(actor);
    entry.log.info(entry.id === entry.module ? 'actor stopped' : 'actor instance stopped');
    this.#emit('actor_stopped', { actor, module: entry.module });
  }

  actors(): ActorInfo[] {
    return [...this.#actors.values()].map((e) => this.#info(e));
  }

  actor(actor: string): ActorInfo | undefined {
    const e = this.#actors.get(actor);
    return e && this.#info(e);
  }

  /** Config values given when the actor started. */
  actorConfig(actor: string): Record<string, string> | undefined {
    return this.#actors.get(actor)?.config;
  }

  /** Invokes an operation on an actor: locally when it runs here, else over the bus. */
  invokeActor(actor: string, operation: string, msg: Uint8Array, options: { deadlineMs?: number; origin?: string } = {}): Promise<Uint8Array> {
    const local = this.#actors.get(actor);
    if (local) return this.#pool.invoke(actor, operation, msg, options.deadlineMs);
    const deadline = Date.now() + (options.deadlineMs ?? this.options.deadlineMs);
    return this.bus.request({ origin: options.origin ?? this.id, target: actorTarget(actor), operation, msg, deadline });
  }

  // ---------------------------------------------------------------- providers

  /** Starts a provider on this host under `linkName` (default `default`) and applies the links it serves. */
  async addProvider(provider: CapabilityProvider, options: { linkName?: string } = {}): Promise<void> {
    this.#assertRunning();
    const contract = canonicalContract(provider.contract);
    const linkName = normalizeLinkName(options.linkName);
    const key = providerKey(contract, linkName);
    if (this.#providers.has(key)) throw new WasmletError('PROVIDER_EXISTS', `a ${contract} provider with link name ${linkName} is already on this host`);
    const ctx: ProviderContext = {
      hostId: this.id,
      logger: this.logger.child({ provider: provider.name, linkName }),
      logs: this.logs,
      invokeActor: (actor, op, msg, o) => {
        const refused = this.#notClaimed(actor, contract);
        if (refused) return Promise.reject(refused);
        return this.invokeActor(actor, op, msg, { deadlineMs: o?.deadlineMs, origin: `${contract}/${linkName}` });
      },
    };
    const machine = createProviderActor(provider, ctx);
    const entry: ProviderEntry = { provider, linkName, machine };
    this.#providers.set(key, entry);
    await untilRunning(machine);
    entry.sub = this.bus.serve(providerTarget(contract, linkName), (inv) => this.#serveProviderCall(entry, inv));
    this.logger.info({ provider: provider.name, contract, linkName }, 'provider started');
    this.#emit('provider_started', { name: provider.name, contract, linkName });
    for (const link of this.links.list()) {
      if (link.contract === contract && link.linkName === linkName) {
        await this.#applyPut(entry, link).catch((err) => this.logger.error({ err, actor: link.actor, contract }, 'provider refused link'));
      }
    }
    this.#syncRoutes();
  }

  providers(): { name: string; contract: string; linkName: string; state: string }[] {
    return [...this.#providers.values()].map((p) => ({
      name: p.provider.name,
      contract: canonicalContract(p.provider.contract),
      linkName: p.linkName,
      state: String(p.machine.getSnapshot().value),
    }));
  }

  // ---------------------------------------------------------------- links

  /**
   * Puts a link. When the provider runs on this host it is configured first; if it refuses the
   * values (bad PORT, port in use…) the link is not kept and the error says why.
   */
  async putLink(input: { actor: string; contract: string; linkName?: string; provider?: string; values?: Record<string, unknown> }): Promise<LinkDefinition> {
    const link = normalizeLink(input);
    const claims = this.claimsOf(link.actor);
    if (claims && !claimedContracts(claims).has(link.contract)) {
      throw new WasmletError('LINK_NOT_CLAIMED', `actor ${link.actor} does not claim ${link.contract}; its claims allow: ${[...claimedContracts(claims)].join(', ') || 'nothing'}`);
    }
    const local = this.#providers.get(providerKey(link.contract, link.linkName));
    if (local) await this.#applyPut(local, link);
    await this.links.put(link);
    this.#syncRoutes(link.actor);
    this.logger.info({ actor: link.actor, contract: link.contract, linkName: link.linkName }, 'link put');
    this.#emit('link_put', { actor: link.actor, contract: link.contract, linkName: link.linkName });
    return link;
  }

  async deleteLink(actor: string, contract: string, linkName?: string): Promise<boolean> {
    const c = canonicalContract(contract);
    const ln = normalizeLinkName(linkName);
    const removed = await this.links.delete(actor, c, ln);
    if (!removed) return false;
    const local = this.#providers.get(providerKey(c, ln));
    this.#syncRoutes(actor);
    if (local) await this.#applyDelete(local, removed);
    this.#emit('link_deleted', { actor, contract: c, linkName: ln });
    return true;
  }

  /** Links as last applied to local providers: a store that echoes our own writes (or repeats one) changes nothing. */
  readonly #applied = new Map<string, string>();

  async #applyPut(local: ProviderEntry, link: LinkDefinition): Promise<void> {
    const key = linkKeyOf(link);
    const claims = this.claimsOf(link.actor);
    if (!claims) {
      // Applied once the actor's claims are known (it starts here, or its host records them).
      this.#awaitingClaims.set(key, link);
      this.logger.info({ actor: link.actor, contract: link.contract, linkName: link.linkName }, "link waits for the actor's claims before its provider applies it");
      return;
    }
    this.#awaitingClaims.delete(key);
    if (!claimedContracts(claims).has(link.contract)) {
      throw new WasmletError('LINK_NOT_CLAIMED', `actor ${link.actor} does not claim ${link.contract}; the ${local.provider.name} provider does not apply the link`);
    }
    const sig = JSON.stringify([link.values, link.provider ?? null]);
    if (this.#applied.get(key) === sig) return;
    await local.provider.putLink(link);
    this.#applied.set(key, sig);
  }

  async #applyDelete(local: ProviderEntry, link: LinkDefinition): Promise<void> {
    const key = linkKeyOf(link);
    this.#awaitingClaims.delete(key);
    if (!this.#applied.has(key)) return;
    this.#applied.delete(key);
    await local.provider.deleteLink(link);
  }

  /** Links changed elsewhere (another host on the lattice) reach local providers here. */
  #onLinkEvent(e: LinkEvent): void {
    // A deleted link stops its worker route at once; a put one gets its route once applied.
    if (e.type === 'delete') this.#syncRoutes(e.link.actor);
    const local = this.#providers.get(providerKey(e.link.contract, e.link.linkName));
    if (!local) return;
    const op = e.type === 'put' ? this.#applyPut(local, e.link) : this.#applyDelete(local, e.link);
    op.then(
      () => this.#syncRoutes(e.link.actor),
      (err) => this.logger.error({ err, actor: e.link.actor, contract: e.link.contract }, `provider refused link ${e.type}`),
    );
  }

  /**
   * Tells the workers which host calls of an actor (default: of every actor) they may answer
   * themselves: claimed, linked, served by a running provider on this host that offers a worker
   * route. Everything else keeps the main-thread path with its checks at call time.
   */
  #syncRoutes(actor?: string): void {
    if (this.#stopped) return;
    const entries = actor === undefined ? [...this.#actors.values()] : [this.#actors.get(actor)].filter((e) => e !== undefined);
    if (entries.length === 0) return;
    const links = this.links.list();
    for (const entry of entries) {
      const routes: Record<string, WorkerRoute> = {};
      for (const link of links) {
        if (link.actor !== entry.id || !entry.caps.has(link.contract)) continue;
        const key = providerKey(link.contract, link.linkName);
        const local = this.#providers.get(key);
        if (!local?.provider.workerRoute || local.machine.getSnapshot().value !== 'running') continue;
        const route = local.provider.workerRoute(entry.id, link.linkName);
        if (route) routes[key] = route;
      }
      this.#pool.setRoutes(entry.id, routes);
    }
  }

  // ---------------------------------------------------------------- events

  readonly #events = new EventEmitter();

  /** Lifecycle events (actor started/stopped, provider started/stopped, link put/deleted); returns an unsubscribe function. */
  onEvent(listener: (e: HostEvent) => void): () => void {
    this.#events.on('event', listener);
    return () => this.#events.off('event', listener);
  }

  #emit(type: HostEventType, data: Record<string, unknown>): void {
    if (this.#events.listenerCount('event')) this.#events.emit('event', { type, data } satisfies HostEvent);
  }

  // ---------------------------------------------------------------- routing

  /** An actor's host call: checked against its claims and links at call time, then routed. */
  async #hostCall(actor: string, binding: string, namespace: string, operation: string, payload: Uint8Array, deadline: number): Promise<Uint8Array> {
    const entry = this.#actors.get(actor);
    if (!entry) throw new InvocationError('ACTOR_NOT_FOUND', `actor ${actor} is not running`);
    if (isActorNamespace(namespace)) return this.#actorCalls.call(entry, namespace, operation, payload, deadline);
    const contract = canonicalContract(namespace);
    const linkName = normalizeLinkName(binding);
    if (!entry.caps.has(contract)) {
      entry.log.warn({ contract: namespace, operation }, 'capability call denied: not claimed');
      throw new InvocationError('NOT_CLAIMED', `actor ${actor} is not allowed to call ${namespace}: its claims do not include it`);
    }
    if (!this.links.get(actor, contract, linkName)) {
      entry.log.warn({ contract: namespace, linkName, operation }, 'capability call denied: not linked');
      throw new InvocationError('NOT_LINKED', `actor ${actor} has no link to ${namespace} (link name ${linkName})`);
    }
    const local = this.#providers.get(providerKey(contract, linkName));
    if (local) return local.provider.handle({ actor, linkName, operation, msg: payload });
    return this.bus.request({ origin: actor, target: providerTarget(contract, linkName), operation, msg: payload, deadline, actor, linkName });
  }

  /** A call from another host to a provider here: served only for an actor that claims the contract and is linked to it. */
  #serveProviderCall(entry: ProviderEntry, inv: BusInvocation): Promise<Uint8Array> {
    if (!inv.actor) return Promise.reject(new InvocationError('BAD_PAYLOAD', 'provider call without a calling actor'));
    const contract = canonicalContract(entry.provider.contract);
    const refused = this.#notClaimed(inv.actor, contract);
    if (refused) return Promise.reject(refused);
    if (!this.links.get(inv.actor, contract, entry.linkName)) {
      return Promise.reject(new InvocationError('NOT_LINKED', `actor ${inv.actor} has no link to ${contract} (link name ${entry.linkName})`));
    }
    return entry.provider.handle({ actor: inv.actor, linkName: entry.linkName, operation: inv.operation, msg: inv.msg });
  }

  /** The claims of `actor`: its own when it runs here, else what the claims source knows. */
  claimsOf(actor: string): ActorClaims | undefined {
    return this.#actors.get(actor)?.claims ?? this.claims.get(actor);
  }

  /** An error when `actor` does not (or is not known to) claim `contract`; undefined when it does. */
  #notClaimed(actor: string, contract: string): InvocationError | undefined {
    const claims = this.claimsOf(actor);
    if (!claims) return new InvocationError('NOT_CLAIMED', `the claims of actor ${actor} are not known on this host; it cannot be called for ${contract}`);
    if (!claimedContracts(claims).has(contract)) return new InvocationError('NOT_CLAIMED', `actor ${actor} does not claim ${contract}`);
    return undefined;
  }

  /** Claims of `actor` became known: links that waited for them are applied now. */
  #onClaims(actor: string): void {
    if (this.#stopped || this.#awaitingClaims.size === 0) return;
    for (const [key, link] of [...this.#awaitingClaims]) {
      if (link.actor !== actor) continue;
      const local = this.#providers.get(providerKey(link.contract, link.linkName));
      if (!local) {
        this.#awaitingClaims.delete(key);
        continue;
      }
      this.#applyPut(local, link).then(
        () => this.#syncRoutes(actor),
        (err) => this.logger.error({ err, actor, contract: link.contract }, 'provider refused link'),
      );
    }
  }

  #guestLogs(actor: string, lines: GuestLogLine[]): void {
    const entry = this.#actors.get(actor);
    for (const [level, msg, time] of lines) {
      this.logs.append(actor, { time, level, stream: 'console', msg });
      entry?.log[level]({ stream: 'console' }, msg);
    }
  }

  #info(e: ActorEntry): ActorInfo {
    return {
      id: e.id,
      module: e.module,
      name: e.claims.wascap.name ?? '',
      issuer: e.claims.iss,
      caps: e.claims.wascap.caps ?? [],
      kind: e.prepared.kind,
      state: String(e.machine.getSnapshot().value),
      instances: this.#pool.instances(e.id),
      maxInstances: e.maxInstances,
      maxConcurrency: e.maxConcurrency,
      maxMemoryMiB: e.maxMemoryMiB,
      deadlineMs: e.deadlineMs,
      traps: e.machine.getSnapshot().context.traps,
    };
  }

  /** Worker restarts (overruns and crashes) since start. */
  get workerRestarts(): number {
    return this.#pool.restarts;
  }

  /** Workers replaced, once their calls were done, to give back the memory of discarded instances. */
  get workerRecycles(): number {
    return this.#pool.recycled;
  }

  #assertRunning(): void {
    if (this.#stopped) throw new WasmletError('HOST_STOPPED', 'host is stopped');
  }

  /** Stops actors (draining), providers, and the workers. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    await Promise.all([...this.#actors.keys()].map((id) => this.stopActor(id).catch(() => {})));
    for (const p of this.#providers.values()) {
      p.sub?.close();
      await stopProviderActor(p.machine);
      this.#emit('provider_stopped', { name: p.provider.name, contract: canonicalContract(p.provider.contract), linkName: p.linkName });
    }
    this.#providers.clear();
    this.#unsubscribeLinks();
    this.#unsubscribeClaims();
    await this.#pool.close();
    this.logger.info('host stopped');
  }
}

/** The contracts a set of claims names, in canonical form. */
function claimedContracts(claims: ActorClaims): Set<string> {
  return new Set((claims.wascap?.caps ?? []).map(canonicalContract));
}

function linkKeyOf(l: LinkDefinition): string {
  return `${l.actor}/${l.contract}/${l.linkName}`;
}

