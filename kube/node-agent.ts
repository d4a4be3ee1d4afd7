/**
 * The node agent (`wasmlet kubelet`): registers the Node, keeps its Lease and status fresh, serves
 * the kubelet API, watches the pods bound to the node and runs each through a PodController. The
 * actors keep running whatever happens to the API server: statuses and the watch catch up when it
 * returns, and a pod deleted meanwhile is stopped after the relist.
 */
import { mkdir } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { KubeConfig, V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { isWasmletError, type Host } from '../host/index.ts';
import { KubeletAuthenticator } from './auth.ts';
import { every, jittered, sleep } from './backoff.ts';
import { EventRecorder } from './events.ts';
import type { ImagePuller } from './image-puller.ts';
import { apiErrorText, loadKubeConfig, makeClients, type KubeClients } from './kube-client.ts';
import { KubeletServer, refuseSocket, type LogLookup } from './kubelet-server.ts';
import { NodeLease } from './lease.ts';
import { ModuleCache } from './module-cache.ts';
import { NodeRegistration } from './node.ts';
import { parseNodeAgentOptions, type NodeAgentOptions, type NodeAgentOptionsInput } from './options.ts';
import { PodController, type PodControllerDeps } from './pod-controller.ts';
import type { PodStateValue } from './pod-machine.ts';
import { checkBindable, formatAddress, nodeAddressForAll, parsePodCidr, PodIpAllocator, type PodAddresses } from './pod-ips.ts';
import { PodWatcher } from './pod-watcher.ts';
import { portForwardRefusal, servePortForward } from './port-forward.ts';
import { PodStatusWriter } from './status-writer.ts';
import { selfSignedServingCertificate } from './tls.ts';
import { TrapMonitor } from './trap-monitor.ts';

export interface NodeAgentDeps {
  /** The host the pods' actors run in (with its capability providers added). */
  host: Host;
  puller: ImagePuller;
  logger: Logger;
  /** Use this instead of `options.kubeconfig` / `options.inCluster`. */
  kubeConfig?: KubeConfig;
}

export interface PodInfo {
  namespace: string;
  name: string;
  uid: string;
  state: PodStateValue;
  actors: string[];
}

const TERMINAL = new Set(['Succeeded', 'Failed']);

export class NodeAgent {
  readonly options: NodeAgentOptions;
  readonly clients: KubeClients;
  readonly #d: NodeAgentDeps;
  readonly #log: Logger;
  readonly #abort = new AbortController();
  readonly #pods = new Map<string, PodController>();
  readonly #registration: NodeRegistration;
  readonly #lease: NodeLease;
  readonly #statuses: PodStatusWriter;
  readonly #events: EventRecorder;
  readonly #traps: TrapMonitor;
  readonly #modules = new ModuleCache();
  readonly #loops: Promise<void>[] = [];
  #addresses: PodAddresses;
  #watcher: PodWatcher | undefined;
  #server: KubeletServer | undefined;
  #stopped = false;

  private constructor(options: NodeAgentOptions, deps: NodeAgentDeps) {
    this.options = options;
    this.#d = deps;
    this.#log = deps.logger.child({ node: options.nodeName });
    this.clients = makeClients(deps.kubeConfig ?? loadKubeConfig(options));
    this.#registration = new NodeRegistration(this.clients, options, this.#log);
    this.#lease = new NodeLease(this.clients, options.nodeName, options.leaseDurationSeconds, () => this.#registration.uid);
    this.#statuses = new PodStatusWriter(this.clients, { concurrency: options.apiConcurrency, retryMs: options.podStatusRetryMs, logger: this.#log });
    this.#events = new EventRecorder(this.clients, { nodeName: options.nodeName, concurrency: options.apiConcurrency, logger: this.#log });
    this.#addresses = nodeAddressForAll(options.address);
    this.#traps = new TrapMonitor(deps.host, { crashTraps: options.crashTraps, crashWindowMs: options.crashWindowMs, pollMs: options.trapPollMs });
  }

  /**
   * Starts the agent: kubelet API, Node registration (retried until the API answers), Lease and
   * status loops, pod watch. Resolves once the first pod list was handled.
   */
  static async start(options: NodeAgentOptionsInput, deps: NodeAgentDeps): Promise<NodeAgent> {
    const agent = new NodeAgent(parseNodeAgentOptions(options), deps);
    try {
      await agent.#start();
    } catch (err) {
      await agent.stop().catch(() => {});
      throw err;
    }
    return agent;
  }

  get nodeName(): string {
    return this.options.nodeName;
  }

  /** The port the kubelet API listens on. */
  get port(): number {
    return this.#server?.port ?? 0;
  }

  get host(): Host {
    return this.#d.host;
  }

  pods(): PodInfo[] {
    return [...this.#pods.values()].map((c) => ({
      namespace: c.ref.namespace,
      name: c.ref.name,
      uid: c.ref.uid,
      state: c.state,
      actors: c.actors,
    }));
  }

  /** Watch statistics (lists and watch connections so far). */
  get watchStats(): { lists: number; watches: number } {
    return { lists: this.#watcher?.lists ?? 0, watches: this.#watcher?.watches ?? 0 };
  }

  /** Resolves when pending status writes and events reached the API (tests, benchmarks). */
  async settled(): Promise<void> {
    await Promise.all([...this.#pods.values()].map((c) => this.#statuses.flushed(c.ref.uid)));
    await this.#events.settled();
  }

  /** The pod CIDR pods get their addresses from (none: they share the node's). */
  get podCidr(): string | undefined {
    return this.#addresses.cidr;
  }

  /** Pods get addresses from `cidr` from now on (checked to be bindable here first). */
  async #usePodCidr(cidr: string, from: string): Promise<void> {
    if (this.#addresses.cidr === cidr) return;
    const range = parsePodCidr(cidr);
    const allocator = new PodIpAllocator(range, [this.options.address]);
    await checkBindable(formatAddress(range.family, range.first), cidr);
    this.#addresses = allocator;
    this.#log.info({ podCidr: cidr, from }, 'pods get addresses of their own');
  }

  async #start(): Promise<void> {
    const o = this.options;
    await mkdir(o.dataDir, { recursive: true });
    if (o.podCidr) await this.#usePodCidr(o.podCidr, '--pod-cidr');
    const tls = o.tlsCert && o.tlsKey ? { cert: o.tlsCert, key: o.tlsKey } : await selfSignedServingCertificate(o.nodeName, [o.address, o.hostname, o.nodeName, 'localhost']);
    this.#server = await KubeletServer.start({
      port: o.port,
      bindAddress: o.bindAddress,
      cert: tls.cert,
      key: tls.key,
      ...(o.clientCa ? { clientCa: o.clientCa } : {}),
      logger: this.#log,
      authenticator: new KubeletAuthenticator(this.clients, { tokens: o.tokens, tokenReview: o.tokenReview, cacheMs: o.tokenReviewCacheMs, logger: this.#log }),
      logs: this.#d.host.logs,
      lookup: (ns, pod, container) => this.#lookup(ns, pod, container),
      portForward: (ns, pod, req, socket, head) => this.#portForward(ns, pod, req, socket, head),
    });
    const signal = this.#abort.signal;
    for (let attempt = 0; ; attempt++) {
      try {
        const node = await this.#registration.register(this.#nodeStatus(true));
        await this.#lease.renew();
        // Without --pod-cidr, the range the cluster gave the Node (spec.podCIDR), if any.
        if (!o.podCidr && node.spec?.podCIDR) await this.#usePodCidr(node.spec.podCIDR, 'spec.podCIDR');
        break;
      } catch (err) {
        if (isWasmletError(err) && err.code.startsWith('POD_CIDR')) throw err; // a setup error: retrying will not help
        const delay = jittered(attempt, o.apiBackoff);
        this.#log.warn({ err: apiErrorText(err), retryInMs: delay }, 'node registration failed: retrying');
        if (!(await sleep(delay, signal))) throw new Error('node agent stopped before the node was registered');
      }
    }
    const warn = (what: string) => (err: unknown) => this.#log.warn({ err: apiErrorText(err) }, `${what} failed`);
    this.#loops.push(every(o.leaseRenewIntervalMs, () => this.#lease.renew(), signal, warn('lease renewal')));
    this.#loops.push(
      every(
        o.nodeStatusUpdateIntervalMs,
        async () => {
          await this.#registration.updateStatus(this.#nodeStatus(true));
          this.#statuses.retryNow(); // the API answers again: statuses that waited go now
        },
        signal,
        warn('node status update'),
      ),
    );
    this.#watcher = new PodWatcher(
      this.clients,
      { sync: (pods) => this.#sync(pods), upsert: (pod) => this.#upsert(pod), remove: (pod) => this.#remove(pod) },
      { nodeName: o.nodeName, backoff: o.apiBackoff, logger: this.#log },
    );
    await this.#watcher.start();
    this.#log.info({ port: this.port, address: o.address }, 'node agent started');
  }

  #nodeStatus(ready: boolean) {
    return ready
      ? { ready: true, kubeletPort: this.port }
      : { ready: false, kubeletPort: this.port, notReadyReason: 'KubeletStopped', notReadyMessage: 'wasmlet node agent stopped' };
  }

  #portForward(ns: string, pod: string, req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const c = [...this.#pods.values()].find((p) => p.ref.namespace === ns && p.ref.name === pod);
    const target = c?.portForwardTarget();
    const refusal = portForwardRefusal(req);
    if (!target || refusal) {
      return refuseSocket(socket, 400, 'BadRequest', refusal ?? `pod ${ns}/${pod} runs no actor to forward to on this node`);
    }
    servePortForward(socket, head, { namespace: ns, pod, ...target }, this.#log);
  }

  #lookup(ns: string, pod: string, container: string): LogLookup {
    const c = [...this.#pods.values()].find((p) => p.ref.namespace === ns && p.ref.name === pod);
    if (!c) return { error: 'pod' };
    return c.logTarget(container) ?? { error: 'container' };
  }

  // ------------------------------------------------------------------ pods

  #sync(pods: V1Pod[]): void {
    const live = new Set(pods.map((p) => p.metadata?.uid));
    for (const [uid, c] of this.#pods) {
      if (!live.has(uid)) {
        this.#log.info({ pod: `${c.ref.namespace}/${c.ref.name}` }, 'pod gone (noticed at relist): stopping it');
        c.removed();
      }
    }
    for (const p of pods) this.#upsert(p);
  }

  #upsert(pod: V1Pod): void {
    const uid = pod.metadata?.uid;
    if (!uid || this.#stopped) return;
    const existing = this.#pods.get(uid);
    if (existing) {
      existing.update(pod);
      return;
    }
    // Same name, new uid: the old pod is gone even if its DELETED event was missed.
    for (const c of this.#pods.values()) {
      if (c.ref.namespace === pod.metadata?.namespace && c.ref.name === pod.metadata?.name) c.removed();
    }
    const terminal = TERMINAL.has(pod.status?.phase ?? '');
    const active = [...this.#pods.values()].filter((c) => !['completed', 'error', 'failed', 'terminating', 'terminated'].includes(c.state)).length;
    let opts: ConstructorParameters<typeof PodController>[2] = {};
    if (terminal) opts = { adopt: pod.status!.phase as 'Succeeded' | 'Failed' };
    else if (active >= this.options.maxPods) opts = { reject: { reason: 'OutOfpods', message: `Node didn't have enough resource: pods, capacity ${this.options.maxPods}` } };
    const c = new PodController(pod, this.#controllerDeps(), opts);
    this.#pods.set(uid, c);
    void c.done.then(() => {
      if (this.#pods.get(uid) === c) this.#pods.delete(uid);
    });
    this.#log.info({ pod: `${c.ref.namespace}/${c.ref.name}`, uid, ...(opts.reject ? { rejected: opts.reject.reason } : {}) }, 'pod assigned to this node');
    if (opts.reject) this.#events.record(c.ref, 'Warning', opts.reject.reason, opts.reject.message);
    c.start();
  }

  #remove(pod: V1Pod): void {
    const c = pod.metadata?.uid ? this.#pods.get(pod.metadata.uid) : undefined;
    c?.removed();
  }

  #controllerDeps(): PodControllerDeps {
    return {
      host: this.#d.host,
      puller: this.#d.puller,
      clients: this.clients,
      options: this.options,
      events: this.#events,
      statuses: this.#statuses,
      traps: this.#traps,
      modules: this.#modules,
      placement: { nodeName: this.options.nodeName, nodeAddress: this.options.address },
      addresses: this.#addresses,
      logger: this.#log,
      signal: this.#abort.signal,
    };
  }

  /**
   * Stops cleanly: the pod watch ends, every pod's containers stop (actors drained, WASI programs
   * stopped; the pods stay in the API), the Node is marked NotReady, the Lease is no longer renewed.
   */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    await this.#watcher?.stop();
    await Promise.all([...this.#pods.values()].map((c) => c.shutdown()));
    this.#abort.abort();
    await Promise.all(this.#loops);
    if (this.#registration.uid) {
      await Promise.race([this.#registration.updateStatus(this.#nodeStatus(false)).catch(() => {}), sleep(2000)]);
    }
    this.#traps.stop();
    this.#statuses.stop();
    this.#events.stop();
    await this.#server?.close();
    this.#log.info('node agent stopped');
  }
}
