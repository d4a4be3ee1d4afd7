/**
 * Options of the node agent (`wasmlet kubelet`), with their defaults, and the one function that
 * validates them. Durations are milliseconds unless the name says seconds (as Kubernetes does).
 */
import { networkInterfaces, tmpdir } from 'node:os';
import { isIP } from 'node:net';
import { isAbsolute, join } from 'node:path';
import { z } from 'zod';
import { parseWith } from '../host/index.ts';
import { parsePodCidr } from './pod-ips.ts';

/** The label values and taint this node carries (see docs/kubernetes.md). */
export const WASMLET_ARCH = 'wasm32-wasmlet';
export const WASMLET_OS = 'wasmlet';
export const TAINT_KEY = 'wasmlet.dev/arch';

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const pem = z.string().includes('-----BEGIN', { message: 'a PEM string' });
const ms = (def: number, min = 1) => z.number().int().min(min).max(86_400_000).default(def);

const taintSchema = z
  .object({
    key: z.string().min(1),
    value: z.string().optional(),
    effect: z.enum(['NoSchedule', 'PreferNoSchedule', 'NoExecute']),
  })
  .strict();

const backoffSchema = (baseMs: number, maxMs: number) =>
  z
    .object({
      /** First delay. */
      baseMs: ms(baseMs),
      /** Delays double up to this. */
      maxMs: ms(maxMs),
    })
    .strict()
    .default({ baseMs, maxMs })
    .refine((b) => b.baseMs <= b.maxMs, { message: 'baseMs must not exceed maxMs' });

/** The first non-internal IPv4 address of this machine, else 127.0.0.1. */
export function defaultNodeAddress(): string {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}

export const nodeAgentOptionsSchema = z
  .object({
    /** Node name (a DNS subdomain). Required. */
    nodeName: z.string().max(253).regex(DNS_SUBDOMAIN, 'a lowercase DNS subdomain (letters, digits, "-" and ".")'),
    /** kubeconfig file to use. When neither this nor `inCluster` is set, the caller must hand a KubeConfig in. */
    kubeconfig: z.string().min(1).optional(),
    /** Use the in-cluster service account (KUBERNETES_SERVICE_HOST and the mounted token). Default false. */
    inCluster: z.boolean().default(false),
    /** Extra node labels (added to the arch/os/hostname labels, which they may not override). */
    labels: z.record(z.string(), z.string()).default({}),
    /** Node taints. Default: `wasmlet.dev/arch=wasm32-wasmlet` with NoSchedule and NoExecute. */
    taints: z.array(taintSchema).default([
      { key: TAINT_KEY, value: WASMLET_ARCH, effect: 'NoSchedule' },
      { key: TAINT_KEY, value: WASMLET_ARCH, effect: 'NoExecute' },
    ]),
    /** Pods this node accepts (capacity and allocatable `pods`). Default 110, as the kubelet. */
    maxPods: z.number().int().min(1).max(100_000).default(110),
    /** The node's address (InternalIP, pods' podIP, where the kubelet API listens). Default: first non-internal IPv4, else 127.0.0.1. */
    address: z.string().refine((a) => isIP(a) !== 0, 'an IP address').default(defaultNodeAddress),
    /** Hostname reported in addresses and the `kubernetes.io/hostname` label. Default: the node name. */
    hostname: z.string().min(1).optional(),
    /** Kubelet HTTPS API port (0: a free port, reported in daemonEndpoints). Default 10250. */
    port: z.number().int().min(0).max(65535).default(10250),
    /**
     * Pods' addresses: each pod gets its own IP from this range (e.g. `127.10.0.0/24`, which
     * Linux binds with no setup). Default: the Node's `spec.podCIDR` when the cluster sets one,
     * else none (every pod's IP is `address`).
     */
    podCidr: z
      .string()
      .superRefine((c, ctx) => {
        try {
          parsePodCidr(c);
        } catch (err) {
          ctx.addIssue({ code: 'custom', message: (err as Error).message });
        }
      })
      .optional(),
    /** Address the kubelet API binds. Default: `address`. */
    bindAddress: z.string().refine((a) => isIP(a) !== 0, 'an IP address').optional(),
    /** Serving certificate and key (PEM). Default: a self-signed certificate made at start. */
    tlsCert: pem.optional(),
    tlsKey: pem.optional(),
    /** CA (PEM) whose client certificates may read logs (the API server's kubelet client certificate). */
    clientCa: pem.optional(),
    /** Bearer tokens that may read logs. */
    tokens: z.array(z.string().min(1)).default([]),
    /** Check other bearer tokens with a TokenReview against the API server. Default true. */
    tokenReview: z.boolean().default(true),
    /** How long a TokenReview answer is trusted. Default 60 000. */
    tokenReviewCacheMs: ms(60_000, 0),
    /** Lease duration written in the node's Lease (seconds). Default 40. */
    leaseDurationSeconds: z.number().int().min(1).max(3600).default(40),
    /** How often the Lease is renewed. Default 10 000 (a quarter of the duration). */
    leaseRenewIntervalMs: ms(10_000),
    /** How often node status (Ready heartbeat) is written. Default 10 000. */
    nodeStatusUpdateIntervalMs: ms(10_000),
    /** How often pod statuses that could not be written are tried again. Default 2 000. */
    podStatusRetryMs: ms(2_000),
    /** Writes to the API at once (statuses, events). Default 8. */
    apiConcurrency: z.number().int().min(1).max(256).default(8),
    /** Backoff of API retries (registration, watch, status): 500 ms doubling to 30 s. */
    apiBackoff: backoffSchema(500, 30_000),
    /** Backoff of image pulls (ImagePullBackOff): 10 s doubling to 5 min, as the kubelet. */
    imagePullBackoff: backoffSchema(10_000, 300_000),
    /** Backoff of container restarts (CrashLoopBackOff): 10 s doubling to 5 min, as the kubelet. */
    crashLoopBackoff: backoffSchema(10_000, 300_000),
    /** A container that ran this long without crashing resets its backoff. Default 10 min. */
    backoffResetMs: ms(600_000),
    /** An actor that traps this many times within `crashWindowMs` has crashed. Default 3. */
    crashTraps: z.number().int().min(1).max(1_000_000).default(3),
    crashWindowMs: ms(60_000),
    /** How often actors' trap counts are looked at. Default 500. */
    trapPollMs: ms(500),
    /** Grace period when a pod sets none (seconds). Default 30. */
    defaultGracePeriodSeconds: z.number().int().min(0).max(86_400).default(30),
    /** Where pod volumes (ConfigMap, Secret, emptyDir files) are written. Default: `<tmp>/wasmlet-kubelet-<node>`. */
    dataDir: z.string().min(1).optional(),
    /**
     * `hostPath` volumes in WASI pods: false (default: refused, since a pod could reach any file
     * of the node, whose agent often runs as root), true (any directory), or the directory
     * prefixes they may name.
     */
    allowHostPath: z
      .union([z.boolean(), z.array(z.string().refine((p) => isAbsolute(p), 'an absolute path')).min(1)])
      .default(false),
    /** Version reported in nodeInfo.kubeletVersion. */
    kubeletVersion: z.string().min(1).default('v1.32.0-wasmlet'),
  })
  .strict()
  .refine((o) => !(o.tlsCert && !o.tlsKey) && !(o.tlsKey && !o.tlsCert), { message: 'tlsCert and tlsKey go together', path: ['tlsCert'] });

export type NodeAgentOptionsInput = z.input<typeof nodeAgentOptionsSchema>;
export type NodeAgentOptions = z.output<typeof nodeAgentOptionsSchema> & { hostname: string; dataDir: string; bindAddress: string };

/** Validates NodeAgentOptions and fills in defaults. Throws OptionsError naming each problem. */
export function parseNodeAgentOptions(input: unknown): NodeAgentOptions {
  const o = parseWith(nodeAgentOptionsSchema, 'node agent options', input);
  return {
    ...o,
    hostname: o.hostname ?? o.nodeName,
    dataDir: o.dataDir ?? join(tmpdir(), `wasmlet-kubelet-${o.nodeName}`),
    bindAddress: o.bindAddress ?? o.address,
  };
}
