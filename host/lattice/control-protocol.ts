/**
 * The lattice control protocol: JSON requests on `wasmlet.<lattice>.ctl.…`, JSON replies, and
 * lifecycle events as CloudEvents 1.0 (structured JSON) on `wasmlet.<lattice>.evt.<type>`.
 *
 *     ctl.ping.hosts                      every host answers HostInfo           (gathered)
 *     ctl.inventory                       every host answers HostInventory      (gathered)
 *     ctl.host.<hostId>.inventory         that host's HostInventory
 *     ctl.host.<hostId>.actor.start       {ref, config?, maxInstances?, maxConcurrency?, maxMemoryMiB?, deadlineMs?} on that host
 *     ctl.actor.start                     the same, on any one host (queue group)
 *     ctl.host.<hostId>.actor.stop        {actor} on that host
 *     ctl.actor.stop                      {actor}: every host running it stops it and answers (gathered)
 *     ctl.link.put                        LinkInput, by any one host (queue group)
 *     ctl.link.del                        {actor, contract, linkName?}, by any one host
 *
 * Replies: `{"ok":true, …}` or `{"ok":false,"error":{"code","message"}}`. Lifecycle events come
 * from the host's own event stream when the ControlHost offers one (`onEvent`); otherwise the
 * control server announces what it did itself. Control requests are
 * not signed: who may send them is NATS's business (account permissions on `wasmlet.*.ctl.>`).
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { ActorClaims, LinkDefinition } from '../types.ts';

/** CloudEvents `type` prefix: `dev.wasmlet.<event>`. */
export const EVENT_TYPE_PREFIX = 'dev.wasmlet.';

/** Events a host publishes (short names; the CloudEvents type is `dev.wasmlet.<name>`). */
export type LatticeEventName =
  | 'host_started'
  | 'host_stopped'
  | 'host_heartbeat'
  | 'actor_started'
  | 'actor_stopped'
  | 'actor_start_failed'
  | 'provider_started'
  | 'provider_stopped'
  | 'link_put'
  | 'link_deleted';

/** A CloudEvent 1.0 in structured JSON mode. */
export interface CloudEvent<T = unknown> {
  specversion: '1.0';
  id: string;
  /** `wasmlet://<lattice>/<hostId>` */
  source: string;
  /** `dev.wasmlet.<event>` */
  type: string;
  /** RFC 3339 */
  time: string;
  datacontenttype: 'application/json';
  /** The host that published it (an extension attribute: lowercase alphanumerics). */
  wasmlethost: string;
  data: T;
}

export function cloudEvent<T>(lattice: string, hostId: string, name: string, data: T): CloudEvent<T> {
  return {
    specversion: '1.0',
    id: randomUUID(),
    source: `wasmlet://${lattice}/${hostId}`,
    type: `${EVENT_TYPE_PREFIX}${name}`,
    time: new Date().toISOString(),
    datacontenttype: 'application/json',
    wasmlethost: hostId,
    data,
  };
}

export const cloudEventSchema = z.object({
  specversion: z.literal('1.0'),
  id: z.string().min(1),
  source: z.string().min(1),
  type: z.string().min(1),
  time: z.string().optional(),
  datacontenttype: z.string().optional(),
  wasmlethost: z.string().optional(),
  data: z.unknown(),
});

/** What `get hosts` shows of each host. */
export interface HostInfo {
  hostId: string;
  lattice: string;
  labels: Record<string, string>;
  version: string;
  /** ms since the epoch */
  startedAt: number;
  uptimeMs: number;
  actors: number;
  providers: number;
}

/** An actor as inventories list it (the host's ActorInfo fits). */
export interface InventoryActor {
  id: string;
  name: string;
  state: string;
  [key: string]: unknown;
}

export interface StartedActor {
  actor: InventoryActor;
  claims?: ActorClaims;
}

export interface InventoryProvider {
  name: string;
  contract: string;
  linkName: string;
  state: string;
}

export interface HostInventory {
  hostId: string;
  labels: Record<string, string>;
  actors: InventoryActor[];
  providers: InventoryProvider[];
}

export const startActorRequestSchema = z
  .object({
    /** What to start: a file path on the host, an OCI reference… (the host decides). */
    ref: z.string().min(1),
    config: z.record(z.string(), z.string()).optional(),
    maxInstances: z.number().int().min(1).optional(),
    /** Calls of the actor that run at once (its share of the host's workers). */
    maxConcurrency: z.number().int().min(1).max(1024).optional(),
    /** Linear memory of one instance, MiB. */
    maxMemoryMiB: z.number().int().min(1).max(4096).optional(),
    deadlineMs: z.number().int().min(1).optional(),
  })
  .strict();
export type StartActorRequest = z.infer<typeof startActorRequestSchema>;

export const stopActorRequestSchema = z.object({ actor: z.string().min(1) }).strict();

export const linkInputSchema = z
  .object({
    actor: z.string().min(1),
    contract: z.string().min(1),
    linkName: z.string().optional(),
    provider: z.string().optional(),
    values: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).optional(),
  })
  .strict();
export type LinkInput = z.infer<typeof linkInputSchema>;

export const deleteLinkRequestSchema = z
  .object({ actor: z.string().min(1), contract: z.string().min(1), linkName: z.string().optional() })
  .strict();

export type CtlReply = { ok: true; [key: string]: unknown } | { ok: false; error: { code: string; message: string } };

/** What a host hands its ControlServer: implemented by an adapter over `Host`. */
export interface ControlHost {
  /** The host id (`N…`). */
  readonly id: string;
  labels(): Record<string, string>;
  inventory(): HostInventory | Promise<HostInventory>;
  /**
   * Resolves `request.ref` (file, OCI…) and starts the actor; rejects with an error whose
   * message says why not. The claims, when returned, are recorded on the lattice.
   */
  startActor(request: StartActorRequest): Promise<StartedActor>;
  /** True when the actor ran here and was stopped; false when it does not run here. */
  stopActor(actor: string): Promise<boolean>;
  putLink(link: LinkInput): Promise<LinkDefinition>;
  deleteLink(actor: string, contract: string, linkName?: string): Promise<boolean>;
  /**
   * The host's own lifecycle events (Host.onEvent). When given, the control server publishes
   * exactly these (whatever caused them: ctl, a manifest, shutdown) and records the claims an
   * `actor_started` event carries; without it, it announces only what it did itself.
   */
  onEvent?(listener: (e: { type: string; data: Record<string, unknown> }) => void): () => void;
}
