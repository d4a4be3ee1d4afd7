/**
 * Runs one pod: drives its pod machine with the real work (pulls, WASI runs, actors and links,
 * stopping), publishes its status whenever the machine's snapshot changes, records Events, and
 * when the pod was deleted, removes it from the API with grace 0 once everything stopped.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { createActor, fromPromise, type Actor } from 'xstate';
import type { Host } from '../host/index.ts';
import { parseCapabilityAnnotations, type LinkSpec } from './annotations.ts';
import { instanceId, startActorContainer, stopActorContainer, withinGrace, type RunningActor } from './actor-container.ts';
import { jittered, sleep } from './backoff.ts';
import { apiConfigSource, resolveEnv, type ConfigSource, type PodPlacement } from './env.ts';
import { isPodError, podSpecError, PodError } from './errors.ts';
import { openHostPorts, type HostPortForwarder } from './host-ports.ts';
import type { EventRecorder } from './events.ts';
import { pullCredentials, pullPolicyOf, type ImagePuller } from './image-puller.ts';
import { apiErrorText, apiStatus, type KubeClients } from './kube-client.ts';
import { planLinks } from './link-plan.ts';
import type { ModuleCache } from './module-cache.ts';
import type { NodeAgentOptions } from './options.ts';
import { podMachine, type ContainerExit, type PodContext, type PodEvent, type PodStateValue, type RestartPolicy, type StopCause } from './pod-machine.ts';
import type { PodAddresses } from './pod-ips.ts';
import { PodStatusBuilder } from './pod-status.ts';
import { probesFor, validateProbes, type ContainerProbes } from './probes.ts';
import { logTarget, portForwardTarget, type LogTarget } from './pod-targets.ts';
import type { PodRef, PodStatusWriter } from './status-writer.ts';
import type { TrapMonitor } from './trap-monitor.ts';
import { prepareVolumes, preopensFor } from './volumes.ts';
import { runWasiContainer } from './wasi-container.ts';

export interface PodControllerDeps {
  host: Host;
  puller: ImagePuller;
  clients: KubeClients;
  options: NodeAgentOptions;
  events: EventRecorder;
  statuses: PodStatusWriter;
  traps: TrapMonitor;
  modules: ModuleCache;
  placement: PodPlacement;
  /** Where each pod's IP comes from. */
  addresses: PodAddresses;
  logger: Logger;
  /** Aborted when the agent stops (ends retries of the final delete). */
  signal: AbortSignal;
}

interface ContainerRuntime {
  spec: V1Container;
  init: boolean;
  image?: { bytes: Uint8Array; imageID: string; module: WebAssembly.Module | undefined; wasi: boolean };
  actor?: RunningActor;
  /** Its hostPort forwarders, while it runs. */
  hostPorts?: HostPortForwarder[];
  /** Its probes, while it runs. */
  probes?: ContainerProbes;
  wasi?: { abort: AbortController; done: Promise<void> };
  /** Where its log lines are (the actor instance id, or a per-run id for WASI programs). */
  logId?: string;
}

const fieldPath = (rt: ContainerRuntime) => `spec.${rt.init ? 'initContainers' : 'containers'}{${rt.spec.name}}`;

export class PodController {
  readonly ref: PodRef;
  pod: V1Pod;
  readonly done: Promise<StopCause>;
  readonly #d: PodControllerDeps;
  readonly #log: Logger;
  readonly #containers = new Map<string, ContainerRuntime>();
  readonly #actor: Actor<typeof podMachine>;
  readonly #builder = new PodStatusBuilder();
  readonly #startTimeMs: number;
  readonly #publish: boolean;
  #links: LinkSpec[] = [];
  #volumes: Promise<Map<string, string>> | undefined;
  #starting: Promise<unknown> | undefined;
  #stopping = false;
  #lastStatus = '';
  #lastPhase: string | undefined;
  #lastState: PodStateValue = 'registered';
  #podIP: string | undefined;

  constructor(pod: V1Pod, deps: PodControllerDeps, opts: { adopt?: 'Succeeded' | 'Failed'; reject?: { reason: string; message: string } } = {}) {
    this.pod = pod;
    this.#d = deps;
    this.ref = { namespace: pod.metadata!.namespace ?? 'default', name: pod.metadata!.name!, uid: pod.metadata!.uid! };
    this.#log = deps.logger.child({ pod: `${this.ref.namespace}/${this.ref.name}` });
    this.#startTimeMs = pod.status?.startTime ? new Date(pod.status.startTime).getTime() : Date.now();
    this.#publish = !opts.adopt || opts.reject !== undefined;
    this.#lastPhase = pod.status?.phase;
    const previous = new Map([...(pod.status?.containerStatuses ?? []), ...(pod.status?.initContainerStatuses ?? [])].map((c) => [c.name, c.restartCount]));
    for (const c of pod.spec?.initContainers ?? []) this.#containers.set(c.name, { spec: c, init: true });
    for (const c of pod.spec?.containers ?? []) this.#containers.set(c.name, { spec: c, init: false });
    const policy = (['Always', 'OnFailure', 'Never'].includes(pod.spec?.restartPolicy ?? '') ? pod.spec!.restartPolicy : 'Always') as RestartPolicy;
    const o = deps.options;
    const machine = podMachine.provide({
      actors: {
        pull: fromPromise(({ signal }) => this.#pull(signal)),
        runInit: fromPromise(({ input, signal }) => this.#runInit(input.name, signal)),
        start: fromPromise(({ input, signal }) => {
          const p = this.#start(input.names, signal);
          this.#starting = p;
          return p;
        }),
        stop: fromPromise(({ input }) => this.#stop(input.cause)),
      },
    });
    this.#actor = createActor(machine, {
      input: {
        restartPolicy: policy,
        containers: [...this.#containers.values()].map((rt) => ({ name: rt.spec.name, init: rt.init, image: rt.spec.image ?? '', restartCount: previous.get(rt.spec.name) ?? 0 })),
        imagePullBackoff: o.imagePullBackoff,
        crashLoopBackoff: o.crashLoopBackoff,
        backoffResetMs: o.backoffResetMs,
        ...(opts.reject ? { adopt: 'Failed' as const, reason: opts.reject.reason, message: opts.reject.message } : opts.adopt ? { adopt: opts.adopt } : {}),
      },
    });
    this.done = new Promise((resolve) => {
      this.#actor.subscribe({
        next: (snap) => this.#onSnapshot(snap.value as PodStateValue, snap.context),
        complete: () => resolve(this.#actor.getSnapshot().context.stopCause ?? 'deleted'),
      });
    }).then((cause) => this.#finish(cause as StopCause));
  }

  start(): void {
    this.#actor.start();
    if (this.pod.metadata?.deletionTimestamp) this.#send('DELETE');
  }

  get state(): PodStateValue {
    return this.#actor.getSnapshot().value as PodStateValue;
  }

  get context(): PodContext {
    return this.#actor.getSnapshot().context;
  }

  /** A newer version of the pod from the watch. Only deletion matters once it runs. */
  update(pod: V1Pod): void {
    this.pod = pod;
    if (pod.metadata?.deletionTimestamp) this.#send('DELETE');
  }

  /** The pod no longer exists in the API: stop everything, delete nothing. */
  removed(): void {
    this.#send('REMOVED');
  }

  /** The agent stops: stop the pod's containers cleanly, leave the pod alone. */
  async shutdown(): Promise<void> {
    this.#send('SHUTDOWN');
    await this.done;
  }

  #send(type: 'DELETE' | 'REMOVED' | 'SHUTDOWN'): void {
    this.#emit({ type });
  }

  /** Events reach the machine only while it runs (late callbacks after the end are dropped). */
  #emit(event: PodEvent): void {
    if (this.#actor.getSnapshot().status === 'active') this.#actor.send(event);
  }

  /** The actor instances of this pod that run now. */
  get actors(): string[] {
    return [...this.#containers.values()].flatMap((rt) => (rt.actor ? [rt.actor.id] : []));
  }

  /** Where port-forward may connect: the pod's IP and its ports, while something runs. */
  portForwardTarget(): { podIP: string; ports: number[] } | undefined {
    return portForwardTarget(this.#containers.values(), this.#podIP);
  }

  logTarget(container: string): LogTarget | undefined {
    const rt = this.#containers.get(container);
    return rt && logTarget(rt.logId, this.context.containers.find((r) => r.name === container));
  }

  // ------------------------------------------------------------------ work

  async #pull(signal: AbortSignal): Promise<Record<string, string>> {
    const names = [...this.#containers.keys()];
    this.#links = parseCapabilityAnnotations(this.pod.metadata?.annotations, names);
    for (const rt of this.#containers.values()) if (!rt.init) validateProbes(rt.spec);
    const source = apiConfigSource(this.#d.clients);
    const credentials = await pullCredentials(this.pod, source, (msg) => this.#event('Warning', 'FailedToRetrieveImagePullSecret', msg));
    const out: Record<string, string> = {};
    await Promise.all(
      [...this.#containers.values()].map(async (rt) => {
        if (rt.image) {
          out[rt.spec.name] = rt.image.imageID;
          return;
        }
        const image = rt.spec.image ?? '';
        const started = Date.now();
        this.#event('Normal', 'Pulling', `Pulling image "${image}"`, rt);
        try {
          const pulled = await this.#d.puller.pull(image, { policy: pullPolicyOf(rt.spec), credentials, signal });
          const compiled = await this.#d.modules.get(pulled.digest, pulled.bytes);
          rt.image = { bytes: pulled.bytes, imageID: pulled.imageID, module: compiled.module, wasi: compiled.wasi };
          out[rt.spec.name] = pulled.imageID;
          this.#event('Normal', 'Pulled', `Successfully pulled image "${image}" in ${Date.now() - started}ms (${pulled.bytes.byteLength} bytes, ${compiled.wasi ? 'WASI command' : 'actor'})`, rt);
        } catch (err) {
          const code = (err as { code?: unknown }).code;
          const reason = code === 'NOT_CACHED' ? 'ErrImageNeverPull' : code === 'BAD_REFERENCE' ? 'InvalidImageName' : 'ErrImagePull';
          const message = `Failed to pull image "${image}": ${(err as Error).message}${typeof code === 'string' ? ` [${code}]` : ''}`;
          this.#event('Warning', 'Failed', message, rt);
          throw new PodError('START_FAILED', message, { reason, fatal: false, container: rt.spec.name, cause: err });
        }
      }),
    );
    return out;
  }

  #volumesOnce(source: ConfigSource): Promise<Map<string, string>> {
    this.#volumes ??= prepareVolumes(this.pod, this.#podDir(), source, this.#placement(), { allowHostPath: this.#d.options.allowHostPath, logger: this.#log }).catch((err: unknown) => {
      this.#volumes = undefined;
      throw err;
    });
    return this.#volumes;
  }

  /** What env and the downward API see: the node, and this pod's own address (given it at first use). */
  #placement(): PodPlacement {
    if (this.#podIP === undefined) {
      try {
        this.#podIP = this.#d.addresses.allocate(this.ref.uid, this.pod.status?.podIP);
      } catch (err) {
        throw new PodError('START_FAILED', `no address for the pod: ${(err as Error).message}`, { reason: 'FailedCreatePodSandBox', fatal: false, cause: err });
      }
    }
    return { ...this.#d.placement, podIP: this.#podIP };
  }

  #podDir(): string {
    return join(this.#d.options.dataDir, 'pods', this.ref.uid);
  }

  /** Starts a WASI program; `exit` resolves when it ended (after the machine heard of it). */
  async #launchWasi(rt: ContainerRuntime, source: ConfigSource, signal?: AbortSignal): Promise<{ exit: Promise<ContainerExit> }> {
    const env = await resolveEnv(this.pod, rt.spec, source, this.#placement());
    const preopens = await preopensFor(rt.spec, await this.#volumesOnce(source));
    const abort = new AbortController();
    signal?.addEventListener('abort', () => abort.abort(), { once: true });
    const logId = `pod/${this.ref.uid}/${rt.spec.name}`;
    rt.logId = logId;
    const name = rt.spec.name;
    const exit = runWasiContainer({
      module: rt.image!.module!,
      container: rt.spec,
      env,
      preopens,
      logs: this.#d.host.logs,
      logId,
      signal: abort.signal,
      onStart: (containerID) => {
        this.#emit({ type: 'CONTAINER_STARTED', name, containerID });
        this.#event('Normal', 'Started', `Started container ${name}`, rt);
      },
    }).then((e) => {
      if (rt.wasi?.abort === abort) rt.wasi = undefined;
      this.#d.host.logs.close(logId); // ends `kubectl logs -f` of this run
      if (!this.#stopping) this.#emit({ type: 'CONTAINER_EXITED', name, exit: e });
      return e;
    });
    rt.wasi = { abort, done: exit.then(() => undefined) };
    return { exit };
  }

  async #runInit(name: string, signal: AbortSignal): Promise<ContainerExit> {
    const rt = this.#containers.get(name)!;
    if (!rt.image?.wasi) throw podSpecError(`init container ${name}: its image is not a WASI command (init containers run to completion)`, name);
    const { exit } = await this.#launchWasi(rt, apiConfigSource(this.#d.clients), signal);
    return exit;
  }

  async #start(names: string[], signal: AbortSignal): Promise<void> {
    const source = apiConfigSource(this.#d.clients);
    const started: ContainerRuntime[] = [];
    try {
      for (const name of names) {
        if (signal.aborted || this.#stopping) throw new Error('pod is stopping');
        const rt = this.#containers.get(name)!;
        if (rt.image!.wasi) {
          if (rt.spec.startupProbe || rt.spec.readinessProbe || rt.spec.livenessProbe) {
            throw new PodError('INVALID_POD_SPEC', `container ${name}: probes apply to actor containers; a WASI program runs to completion and has no address to probe`, { reason: 'UnsupportedProbe', fatal: true, container: name });
          }
          await this.#launchWasi(rt, source);
          started.push(rt);
          continue;
        }
        const placement = this.#placement();
        const env = await resolveEnv(this.pod, rt.spec, source, placement);
        const links = planLinks(this.#links, rt.spec, env, placement.podIP!);
        const instance = instanceId(this.ref.namespace, this.ref.name, name);
        const actor = await startActorContainer({ host: this.#d.host, bytes: rt.image!.bytes, container: rt.spec, links, env, instance, annotations: this.pod.metadata?.annotations });
        rt.actor = actor;
        rt.logId = actor.id;
        started.push(rt);
        rt.hostPorts = await openHostPorts(rt.spec, this.#d.placement.nodeAddress, placement.podIP!, this.#log);
        this.#d.traps.watch(actor.id, (traps) => void this.#actorCrashed(rt, actor, traps));
        const probes = this.#probes(rt, placement.podIP!);
        this.#emit({ type: 'CONTAINER_STARTED', name, containerID: `wasmlet://${actor.id}`, ready: !probes.hasReadiness && !probes.hasStartup, started: !probes.hasStartup });
        probes.start();
        this.#event('Normal', 'Started', `Started container ${name}: actor ${actor.module} (${actor.name}) as instance ${actor.id} with ${actor.links.length} link(s)`, rt);
      }
    } catch (err) {
      await Promise.all(started.map((rt) => this.#stopContainer(rt)));
      const e = isPodError(err) ? err : new PodError('START_FAILED', (err as Error).message, { reason: 'RunContainerError', fatal: false, cause: err });
      // Fatal errors are told once, when the pod enters `failed`.
      if (!e.fatal) this.#event('Warning', 'Failed', e.message, e.container ? this.#containers.get(e.container) : undefined);
      throw e;
    }
  }

  /** The container's probes, reporting to the pod machine and as Events while they are its current ones. */
  #probes(rt: ContainerRuntime, podIP: string): ContainerProbes {
    const name = rt.spec.name;
    const probes = probesFor(rt.spec, podIP, {
      current: () => rt.probes === probes && !this.#stopping,
      probed: (verdict) => this.#emit({ type: 'CONTAINER_PROBED', name, ...verdict }),
      unhealthy: (message) => this.#event('Warning', 'Unhealthy', message, rt),
      failed: (kind) => void this.#probeKilled(rt, kind),
    });
    rt.probes = probes;
    return probes;
  }

  /** A liveness or startup probe failed for good: the container is killed, and restartPolicy decides what follows. */
  async #probeKilled(rt: ContainerRuntime, kind: 'liveness' | 'startup'): Promise<void> {
    const name = rt.spec.name;
    const restart = this.context.restartPolicy !== 'Never';
    const message = `Container ${name} failed ${kind} probe${restart ? ', will be restarted' : ''}`;
    this.#log.warn({ container: name, probe: kind }, 'probe failed: killing the container');
    this.#event('Normal', 'Killing', message, rt);
    await this.#stopContainer(rt);
    if (this.#stopping) return;
    this.#emit({ type: 'CONTAINER_EXITED', name, exit: { exitCode: 137, reason: 'Error', message } });
  }

  async #actorCrashed(rt: ContainerRuntime, actor: RunningActor, traps: number): Promise<void> {
    if (this.#stopping || rt.actor !== actor) return;
    this.#log.warn({ container: rt.spec.name, actor: actor.id, traps }, 'actor crashed');
    await this.#stopContainer(rt);
    if (this.#stopping) return;
    const seconds = Math.round(this.#d.options.crashWindowMs / 1000);
    this.#emit({ type: 'CONTAINER_EXITED', name: rt.spec.name, exit: { exitCode: 1, reason: 'Error', message: `actor ${actor.id} failed ${traps} calls (trap or deadline) within ${seconds}s` } });
  }

  async #stopContainer(rt: ContainerRuntime, drainMs?: number): Promise<void> {
    rt.probes?.stop();
    rt.probes = undefined;
    const forwarders = rt.hostPorts;
    rt.hostPorts = undefined;
    await Promise.all((forwarders ?? []).map((f) => f.close()));
    const actor = rt.actor;
    if (actor) {
      rt.actor = undefined;
      this.#d.traps.unwatch(actor.id);
      await stopActorContainer(this.#d.host, actor, drainMs).catch((err: unknown) => this.#log.warn({ err, actor: actor.id }, 'actor did not stop cleanly'));
    }
    const wasi = rt.wasi;
    if (wasi) {
      wasi.abort.abort();
      await wasi.done;
    }
  }

  async #stop(cause: StopCause | 'failed'): Promise<void> {
    if (cause !== 'failed') this.#stopping = true;
    await this.#starting?.catch(() => {});
    const running = [...this.#containers.values()].filter((rt) => rt.actor || rt.wasi);
    if (cause === 'deleted') for (const rt of running) this.#event('Normal', 'Killing', `Stopping container ${rt.spec.name}`, rt);
    const grace = this.pod.metadata?.deletionGracePeriodSeconds ?? this.pod.spec?.terminationGracePeriodSeconds ?? this.#d.options.defaultGracePeriodSeconds;
    await withinGrace(Promise.all(running.map((rt) => this.#stopContainer(rt, grace * 1000))), grace * 1000);
  }

  /** After the machine ended: delete the pod (grace 0) when it was deleted, and clean up. */
  async #finish(cause: StopCause): Promise<StopCause> {
    if (cause === 'deleted') {
      for (let attempt = 0; !this.#d.signal.aborted; attempt++) {
        try {
          await this.#d.clients.core.deleteNamespacedPod({ name: this.ref.name, namespace: this.ref.namespace, gracePeriodSeconds: 0, body: { gracePeriodSeconds: 0, preconditions: { uid: this.ref.uid } } });
          this.#log.info('pod deleted');
          break;
        } catch (err) {
          const status = apiStatus(err);
          if (status === 404 || status === 409) break; // already gone, or the name is another pod's now
          this.#log.warn({ err: apiErrorText(err) }, 'pod delete failed: retrying');
          await sleep(jittered(attempt, this.#d.options.apiBackoff), this.#d.signal);
        }
      }
    }
    this.#d.statuses.forget(this.ref.uid);
    this.#d.addresses.release(this.ref.uid);
    await rm(this.#podDir(), { recursive: true, force: true }).catch(() => {});
    if (cause !== 'shutdown') for (const rt of this.#containers.values()) if (rt.logId) this.#d.host.logs.close(rt.logId, { forget: true });
    return cause;
  }

  // ------------------------------------------------------------------ status and events

  #onSnapshot(state: PodStateValue, context: PodContext): void {
    const previous = this.#lastState;
    this.#lastState = state;
    if (state !== previous) this.#stateEvents(state);
    // A finished pod keeps its IP in its status but no longer holds it.
    if (state === 'completed' || state === 'error' || state === 'failed') this.#d.addresses.release(this.ref.uid);
    if (!this.#publish || state === 'terminated' || context.stopCause === 'shutdown' || context.stopCause === 'removed') return;
    const body = this.#builder.build({ state, context, nodeAddress: this.#d.placement.nodeAddress, ...(this.#podIP ? { podIP: this.#podIP } : {}), startTimeMs: this.#startTimeMs, ...(this.#lastPhase ? { previousPhase: this.#lastPhase } : {}) });
    const text = JSON.stringify(body);
    if (text === this.#lastStatus) return;
    this.#lastStatus = text;
    this.#lastPhase = body.phase;
    this.#d.statuses.set(this.ref, body);
  }

  #stateEvents(state: PodStateValue): void {
    const ctx = this.context;
    if (state === 'imagePullBackoff') {
      for (const r of ctx.containers) if ('waiting' in r.state && r.state.waiting.reason === 'ImagePullBackOff') this.#event('Normal', 'BackOff', `Back-off pulling image "${r.image}"`, this.#containers.get(r.name));
    } else if (state === 'crashLoopBackoff' || state === 'initBackoff') {
      for (const r of ctx.containers) {
        if ('waiting' in r.state && r.state.waiting.reason === 'CrashLoopBackOff') this.#event('Warning', 'BackOff', `Back-off restarting failed container ${r.name} in pod ${this.ref.name}_${this.ref.namespace}(${this.ref.uid})`, this.#containers.get(r.name));
      }
    } else if (state === 'failed' && ctx.reason) {
      this.#log.warn({ reason: ctx.reason, message: ctx.message }, 'pod failed');
      this.#event('Warning', ctx.reason, ctx.message ?? ctx.reason);
    }
  }

  #event(type: 'Normal' | 'Warning', reason: string, message: string, rt?: ContainerRuntime): void {
    this.#d.events.record(this.ref, type, reason, message, rt ? fieldPath(rt) : undefined);
  }
}
