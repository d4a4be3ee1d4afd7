/** Options of the Kubernetes API test server, with their defaults, and the one function that validates them. */
import type { Logger } from 'pino';
import { z } from 'zod';

const pem = z.string().includes('-----BEGIN', { message: 'a PEM string' });

export const kubeApiServerOptionsSchema = z.object({
  /** Logger (pino). Default: silent. */
  logger: z.custom<Logger>((v) => typeof v === 'object' && v !== null && typeof (v as Logger).child === 'function', 'a pino logger').optional(),
  /** Bearer token every API request must carry. Default: a random token; `null` turns authentication off. */
  token: z.string().min(1).nullable().optional(),
  /** Also serve HTTPS (self-signed certificate made at start); the kubeconfig then points at it. Default true. */
  https: z.boolean().default(true),
  /** HTTP port on 127.0.0.1. Default 0 (a free port). */
  port: z.number().int().min(0).max(65535).default(0),
  /** HTTPS port on 127.0.0.1. Default 0 (a free port). */
  httpsPort: z.number().int().min(0).max(65535).default(0),
  /** Changes kept for watch resumption and consistent paging; older resource versions get 410 Gone. Default 1000. */
  historySize: z.number().int().min(1).max(10_000_000).default(1000),
  /** Interval of BOOKMARK events on watches that allow them (ms); 0 turns them off. Default 5000. */
  bookmarkIntervalMs: z.number().int().min(0).default(5000),
  /** A watcher with more unsent output than this is cut off (it resumes). Default 16 MiB. */
  maxWatchBufferBytes: z.number().int().min(1024).default(16 * 1024 * 1024),
  /** Namespaces that exist from the start. Default: default, kube-system, kube-public, kube-node-lease. */
  namespaces: z.array(z.string().min(1)).default(['default', 'kube-system', 'kube-public', 'kube-node-lease']),
  /** How the server authenticates to kubelets when proxying `pods/log`. Default: its own client certificate, no bearer token, kubelet certificates not verified. */
  kubeletClient: z
    .object({
      bearerToken: z.string().min(1).optional(),
      cert: pem.optional(),
      key: pem.optional(),
      ca: pem.optional(),
    })
    .default({}),
  /**
   * Run the cluster's other parts in the server: scheduler, Deployment/ReplicaSet controllers,
   * endpoint controllers, garbage collector (controllers/). Default false: tests play them.
   */
  controllers: z.boolean().default(false),
  /** Directory for the kubeconfig file. Default: a fresh temporary directory, removed by close(). */
  kubeconfigDir: z.string().min(1).optional(),
});

export type KubeApiServerOptionsInput = z.input<typeof kubeApiServerOptionsSchema>;
export type KubeApiServerOptions = z.output<typeof kubeApiServerOptionsSchema>;

export function parseKubeApiServerOptions(input: unknown): KubeApiServerOptions {
  const r = kubeApiServerOptionsSchema.safeParse(input ?? {});
  if (!r.success) {
    const text = r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new TypeError(`invalid kube API server options: ${text}`, { cause: r.error });
  }
  return r.data;
}
