/**
 * The Node object: registration (create, or reconcile what this agent owns on an existing Node),
 * and its status: Ready with a heartbeat, pressure conditions false, addresses, capacity,
 * nodeInfo, and the kubelet endpoint that the API server's log proxy dials.
 */
import { randomUUID } from 'node:crypto';
import { cpus, release, totalmem } from 'node:os';
import type { V1Node, V1NodeCondition, V1Taint } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { WasmletError } from '../host/index.ts';
import { apiErrorText, apiStatus, kubeTime, mergePatch, type KubeClients } from './kube-client.ts';
import { WASMLET_ARCH, WASMLET_OS, type NodeAgentOptions } from './options.ts';

const VERSION = '0.1.0';
/** One per process, as a machine's boot id: tells observers the agent restarted. */
const BOOT_ID = randomUUID();

export interface NodeStatusInput {
  ready: boolean;
  /** Why Ready is false (e.g. `KubeletStopped`). */
  notReadyReason?: string;
  notReadyMessage?: string;
  /** The kubelet API port actually bound. */
  kubeletPort: number;
}

/** Labels this agent owns on its Node. User labels may add to them, never replace them. */
export function nodeLabels(o: NodeAgentOptions): Record<string, string> {
  return {
    ...o.labels,
    'kubernetes.io/arch': WASMLET_ARCH,
    'kubernetes.io/os': WASMLET_OS,
    'kubernetes.io/hostname': o.hostname,
    'beta.kubernetes.io/arch': WASMLET_ARCH,
    'beta.kubernetes.io/os': WASMLET_OS,
    'node.kubernetes.io/instance-type': 'wasmlet',
  };
}

export function nodeCapacity(o: NodeAgentOptions): Record<string, string> {
  return {
    cpu: String(Math.max(1, cpus().length)),
    memory: `${Math.floor(totalmem() / 1024)}Ki`,
    pods: String(o.maxPods),
  };
}

/** Keeps the `lastTransitionTime` of each condition across heartbeats. */
export class NodeConditions {
  readonly #since = new Map<string, { status: string; time: string }>();

  build(input: NodeStatusInput, now = Date.now()): V1NodeCondition[] {
    const heartbeat = kubeTime(now);
    const make = (type: string, status: string, reason: string, message: string): V1NodeCondition => {
      const prev = this.#since.get(type);
      const time = prev && prev.status === status ? prev.time : heartbeat;
      this.#since.set(type, { status, time });
      return { type, status, reason, message, lastHeartbeatTime: heartbeat as never, lastTransitionTime: time as never };
    };
    return [
      make('MemoryPressure', 'False', 'KubeletHasSufficientMemory', 'kubelet has sufficient memory available'),
      make('DiskPressure', 'False', 'KubeletHasNoDiskPressure', 'kubelet has no disk pressure'),
      make('PIDPressure', 'False', 'KubeletHasSufficientPID', 'kubelet has sufficient PID available'),
      input.ready
        ? make('Ready', 'True', 'KubeletReady', 'wasmlet is posting ready status')
        : make('Ready', 'False', input.notReadyReason ?? 'KubeletNotReady', input.notReadyMessage ?? 'wasmlet is not ready'),
    ];
  }
}

export function nodeStatus(o: NodeAgentOptions, input: NodeStatusInput, conditions: V1NodeCondition[]): NonNullable<V1Node['status']> {
  const capacity = nodeCapacity(o);
  return {
    capacity,
    allocatable: capacity,
    conditions,
    addresses: [
      { type: 'InternalIP', address: o.address },
      { type: 'Hostname', address: o.hostname },
    ],
    daemonEndpoints: { kubeletEndpoint: { Port: input.kubeletPort } },
    nodeInfo: {
      architecture: WASMLET_ARCH,
      operatingSystem: WASMLET_OS,
      bootID: BOOT_ID,
      machineID: BOOT_ID.replaceAll('-', ''),
      systemUUID: BOOT_ID,
      kernelVersion: release(),
      osImage: `wasmlet ${VERSION} (Node.js ${process.versions.node})`,
      containerRuntimeVersion: `wasmlet://${VERSION}`,
      kubeletVersion: o.kubeletVersion,
      kubeProxyVersion: '',
    },
  };
}

/** Our taints, plus any taint someone else put on the Node (e.g. `node.kubernetes.io/unreachable`). */
export function mergeTaints(ours: V1Taint[], existing: V1Taint[] | undefined): V1Taint[] {
  const same = (a: V1Taint, b: V1Taint) => a.key === b.key && a.effect === b.effect;
  return [...ours, ...(existing ?? []).filter((t) => !ours.some((o) => same(o, t)))];
}

function podCidrSpec(cidr: string): { podCIDR: string; podCIDRs: string[] } {
  return { podCIDR: cidr, podCIDRs: [cidr] };
}

export class NodeRegistration {
  readonly #conditions = new NodeConditions();
  uid: string | undefined;

  constructor(
    private readonly clients: KubeClients,
    private readonly options: NodeAgentOptions,
    private readonly logger: Logger,
  ) {}

  /**
   * Creates the Node, or brings an existing one in line (labels, taints, and `spec.podCIDR` from
   * `--pod-cidr` when it has none); then writes its status. Resolves with the Node.
   */
  async register(input: NodeStatusInput): Promise<V1Node> {
    const o = this.options;
    const taints: V1Taint[] = o.taints.map((t) => ({ key: t.key, effect: t.effect, ...(t.value !== undefined ? { value: t.value } : {}) }));
    let node: V1Node;
    try {
      const existing = await this.clients.core.readNode({ name: o.nodeName });
      const cidr = existing.spec?.podCIDR;
      if (o.podCidr && cidr && cidr !== o.podCidr) {
        throw new WasmletError('POD_CIDR_CONFLICT', `node ${o.nodeName} already has spec.podCIDR ${cidr} (set by the cluster), but --pod-cidr is ${o.podCidr}: leave --pod-cidr out, or give the same range`);
      }
      node = await this.clients.core.patchNode(
        { name: o.nodeName, body: { metadata: { labels: nodeLabels(o) }, spec: { taints: mergeTaints(taints, existing.spec?.taints), ...(o.podCidr && !cidr ? podCidrSpec(o.podCidr) : {}) } } },
        mergePatch,
      );
      this.logger.info({ node: o.nodeName }, 'node exists: labels and taints reconciled');
    } catch (err) {
      if (apiStatus(err) !== 404) throw err;
      node = await this.clients.core.createNode({
        body: { apiVersion: 'v1', kind: 'Node', metadata: { name: o.nodeName, labels: nodeLabels(o) }, spec: { taints, ...(o.podCidr ? podCidrSpec(o.podCidr) : {}) } },
      });
      this.logger.info({ node: o.nodeName }, 'node registered');
    }
    this.uid = node.metadata?.uid;
    await this.updateStatus(input);
    return node;
  }

  /** Writes node status with a fresh heartbeat. */
  async updateStatus(input: NodeStatusInput): Promise<void> {
    const status = nodeStatus(this.options, input, this.#conditions.build(input));
    try {
      await this.clients.core.patchNodeStatus({ name: this.options.nodeName, body: { status } }, mergePatch);
    } catch (err) {
      throw new Error(`node status update failed: ${apiErrorText(err)}`, { cause: err });
    }
  }
}
