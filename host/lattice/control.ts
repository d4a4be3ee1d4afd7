/**
 * The control interface a host runs on the lattice (protocol in control-protocol.ts): answers
 * control requests through a `ControlHost` (an adapter over the Host, so the host needs no
 * NATS knowledge) and publishes heartbeats and lifecycle CloudEvents. `ControlClient`
 * (control-client.ts) is the other side.
 *
 * On a closed lattice every request must be signed by a ctl member of this lattice
 * (signed-message.ts: credential, role, signature, freshness, nonce); anything else is dropped
 * with a rate-limited log line, unanswered. Replies, events and heartbeats are signed by this
 * member. On an open lattice (`--insecure`) nothing is checked, and every heartbeat says so (and
 * logs a warning).
 */
import type { Logger } from 'pino';
import { z } from 'zod';
import type { Msg, NatsConnection, Subscription } from 'nats';
import { canonicalContract, normalizeLinkName } from '../contracts.ts';
import { parseWith } from '../options.ts';
import type { LinkDefinition } from '../types.ts';
import {
  cloudEvent,
  deleteLinkRequestSchema,
  linkInputSchema,
  startActorRequestSchema,
  stopActorRequestSchema,
  type ControlHost,
  type CtlReply,
  type HostInfo,
  type InventoryActor,
  type LatticeEventName,
} from './control-protocol.ts';
import type { LatticeTrust } from './membership.ts';
import { NonceCache } from './replay.ts';
import { signMessage, verifyMessage } from './signed-message.ts';
import { ctlSubject, eventSubject } from './subjects.ts';

export * from './control-protocol.ts';
export { ControlClient, CTL_NO_HOST, CTL_TIMEOUT, controlClientOptionsSchema, type ControlClientOptions, type ControlClientOptionsInput, type EventStream } from './control-client.ts';

/** Queue group of control requests that any one host may answer. */
export const CTL_QUEUE = 'wasmlet-ctl';

export const controlServerOptionsSchema = z
  .object({
    /** Heartbeat period, ms. Default 30000; 0 = no heartbeats. */
    heartbeatIntervalMs: z.number().int().min(0).default(30_000),
    /** Reported in host info. Default `0.0.0`. */
    version: z.string().default('0.0.0'),
    /**
     * Answer `link put` / `link del` (and write the links). Default true; provider processes
     * set it false: links are written by hosts and ctl only.
     */
    acceptsLinks: z.boolean().default(true),
    /** Requests sent further than this from this host's clock are refused, ms. Default 60000. */
    freshnessMs: z.number().int().min(1000).default(60_000),
    /** A control request past this many bytes is dropped before it is checked or parsed. Default 1 MiB. */
    maxRequestBytes: z.number().int().min(1024).default(1024 * 1024),
  })
  .strict();
export type ControlServerOptionsInput = z.input<typeof controlServerOptionsSchema>;
export type ControlServerOptions = z.output<typeof controlServerOptionsSchema>;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

class BadRequest extends Error {
  readonly code = 'BAD_REQUEST';
}

function errorReply(err: unknown): CtlReply {
  const code = typeof (err as { code?: unknown })?.code === 'string' ? (err as { code: string }).code : 'ERROR';
  return { ok: false, error: { code, message: err instanceof Error ? err.message : String(err) } };
}

function parseBody<S extends z.ZodType>(schema: S, m: Msg): z.output<S> {
  let raw: unknown;
  try {
    raw = m.data.length ? JSON.parse(decoder.decode(m.data)) : {};
  } catch (err) {
    throw new BadRequest(`request is not JSON: ${(err as Error).message}`);
  }
  const r = schema.safeParse(raw);
  if (!r.success) throw new BadRequest(`invalid request: ${r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
  return r.data;
}

export class ControlServer {
  readonly options: ControlServerOptions;
  readonly trust: LatticeTrust;
  readonly #nc: NatsConnection;
  readonly #host: ControlHost;
  readonly #log: Logger;
  readonly #nonces = new NonceCache();
  #droppedWindowStart = 0;
  #droppedCount = 0;
  /** Control requests dropped as unauthenticated, forged, stale, replayed or from the wrong role. */
  dropped = 0;
  readonly #subs: Subscription[] = [];
  readonly #startedAt = Date.now();
  #heartbeat: NodeJS.Timeout | undefined;
  #unsubscribeHost: (() => void) | undefined;
  #running = false;

  constructor(nc: NatsConnection, trust: LatticeTrust, host: ControlHost, options: ControlServerOptionsInput, logger: Logger) {
    this.options = parseWith(controlServerOptionsSchema, 'control server options', options);
    this.trust = trust;
    this.#nc = nc;
    this.#host = host;
    this.#log = logger.child({ ctl: trust.lattice });
  }

  /** Subscribes to control subjects, announces the host and starts heartbeats. */
  async start(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    const L = this.trust.prefix;
    const id = this.#host.id;
    const on = (subject: string, handler: (m: Msg) => Promise<CtlReply | undefined>, queue?: string) => {
      this.#subs.push(this.#nc.subscribe(subject, { ...(queue ? { queue } : {}), callback: (err, m) => (err ? this.#log.warn({ err: err.message, subject }, 'control subscription error') : this.#serve(m, handler)) }));
    };
    on(ctlSubject(L, 'ping', 'hosts'), async () => ({ ok: true, host: await this.hostInfo() }));
    on(ctlSubject(L, 'inventory'), async () => ({ ok: true, inventory: await this.#inventory() }));
    on(ctlSubject(L, 'host', id, 'inventory'), async () => ({ ok: true, inventory: await this.#inventory() }));
    on(ctlSubject(L, 'host', id, 'actor', 'start'), (m) => this.#startActor(m));
    on(ctlSubject(L, 'actor', 'start'), (m) => this.#startActor(m), CTL_QUEUE);
    on(ctlSubject(L, 'host', id, 'actor', 'stop'), (m) => this.#stopActor(m, true));
    on(ctlSubject(L, 'actor', 'stop'), (m) => this.#stopActor(m, false));
    if (this.options.acceptsLinks) {
      on(ctlSubject(L, 'link', 'put'), (m) => this.#putLink(m), CTL_QUEUE);
      on(ctlSubject(L, 'link', 'del'), (m) => this.#deleteLink(m), CTL_QUEUE);
    }
    await this.#nc.flush();
    this.#unsubscribeHost = this.#host.onEvent?.((e) => void this.#onHostEvent(e));
    this.publish('host_started', await this.hostInfo());
    if (this.options.heartbeatIntervalMs > 0) {
      this.#heartbeat = setInterval(() => void this.#beat(), this.options.heartbeatIntervalMs);
      this.#heartbeat.unref();
      await this.#beat();
    }
    this.#log.info({ host: id, prefix: L }, 'lattice control interface started');
  }

  /** Announces the host's departure and stops answering. */
  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    this.#unsubscribeHost?.();
    this.#unsubscribeHost = undefined;
    for (const s of this.#subs) s.unsubscribe();
    this.#subs.length = 0;
    if (!this.#nc.isClosed()) {
      this.publish('host_stopped', { hostId: this.#host.id });
      await this.#nc.flush().catch(() => undefined);
    }
  }

  async hostInfo(): Promise<HostInfo> {
    const inv = await this.#inventory();
    return {
      hostId: this.#host.id,
      lattice: this.trust.lattice,
      labels: this.#host.labels(),
      version: this.options.version,
      startedAt: this.#startedAt,
      uptimeMs: Date.now() - this.#startedAt,
      actors: inv.actors.length,
      providers: inv.providers.length,
    };
  }

  /** Publishes a lifecycle CloudEvent (`dev.wasmlet.<name>`) from this host. Never throws. */
  publish(name: LatticeEventName | string, data: unknown): void {
    try {
      const ev = cloudEvent(this.trust.lattice, this.#host.id, name, data);
      const subject = eventSubject(this.trust.prefix, name);
      const payload = encoder.encode(JSON.stringify(ev));
      const headers = signMessage(this.trust, subject, undefined, payload);
      this.#nc.publish(subject, payload, headers ? { headers } : undefined);
    } catch (err) {
      this.#log.debug({ err: (err as Error).message, event: name }, 'could not publish a lattice event');
    }
  }

  /** Call when an actor started on this host (by any means): announces it. */
  actorStarted(actor: InventoryActor): void {
    this.publish('actor_started', { hostId: this.#host.id, actor });
  }

  actorStopped(actorId: string): void {
    this.publish('actor_stopped', { hostId: this.#host.id, actor: actorId });
  }

  providerStarted(provider: { name: string; contract: string; linkName: string }): void {
    this.publish('provider_started', { hostId: this.#host.id, provider });
  }

  providerStopped(provider: { name: string; contract: string; linkName: string }): void {
    this.publish('provider_stopped', { hostId: this.#host.id, provider });
  }

  linkPut(link: LinkDefinition): void {
    this.publish('link_put', { hostId: this.#host.id, link });
  }

  linkDeleted(link: { actor: string; contract: string; linkName: string }): void {
    this.publish('link_deleted', { hostId: this.#host.id, link });
  }

  /** True when lifecycle events come from the host itself (so handlers must not announce them again). */
  get #hostAnnounces(): boolean {
    return this.#host.onEvent !== undefined;
  }

  #onHostEvent(e: { type: string; data: Record<string, unknown> }): void {
    this.publish(e.type, { hostId: this.#host.id, ...e.data });
  }

  // ------------------------------------------------------------------ handlers

  #serve(m: Msg, handler: (m: Msg) => Promise<CtlReply | undefined>): void {
    if (m.data.byteLength > this.options.maxRequestBytes) {
      this.#drop(m.subject, `a request of ${m.data.byteLength} bytes (at most ${this.options.maxRequestBytes})`);
      return;
    }
    try {
      verifyMessage(this.trust, m, { roles: ['ctl'], nonces: this.#nonces, freshnessMs: this.options.freshnessMs });
    } catch (err) {
      this.#drop(m.subject, (err as Error).message);
      return;
    }
    handler(m)
      .catch((err: unknown) => {
        if (!(err instanceof BadRequest)) this.#log.warn({ err: (err as Error).message, subject: m.subject }, 'control request failed');
        return errorReply(err);
      })
      .then((reply) => {
        if (!reply || !m.reply) return;
        const payload = encoder.encode(JSON.stringify(reply));
        const headers = signMessage(this.trust, m.reply, undefined, payload);
        m.respond(payload, headers ? { headers } : undefined);
      })
      .catch((err: unknown) => this.#log.debug({ err: (err as Error).message }, 'could not answer a control request'));
  }

  async #inventory() {
    const inv = await this.#host.inventory();
    return { ...inv, hostId: this.#host.id, labels: inv.labels ?? this.#host.labels() };
  }

  /** Logs a dropped control request: at most 20 lines per 10 s. */
  #drop(subject: string, reason: string): void {
    this.dropped++;
    const now = Date.now();
    if (now - this.#droppedWindowStart > 10_000) {
      this.#droppedWindowStart = now;
      this.#droppedCount = 0;
    }
    if (++this.#droppedCount <= 20) this.#log.warn({ subject, reason }, 'dropped control request');
  }

  async #beat(): Promise<void> {
    try {
      const inv = await this.#inventory();
      if (this.trust.insecure) this.#log.warn({ lattice: this.trust.lattice }, 'this lattice is OPEN (--insecure): any NATS client can invoke actors, answer calls and send control requests');
      this.publish('host_heartbeat', {
        ...(await this.hostInfo()),
        ...(this.trust.insecure ? { insecure: true } : {}),
        actorIds: inv.actors.map((a) => a.id),
        providerIds: inv.providers.map((p) => `${p.contract}/${p.linkName}`),
      });
    } catch (err) {
      this.#log.debug({ err: (err as Error).message }, 'heartbeat failed');
    }
  }

  async #startActor(m: Msg): Promise<CtlReply> {
    const req = parseBody(startActorRequestSchema, m);
    try {
      const { actor } = await this.#host.startActor(req);
      if (!this.#hostAnnounces) this.actorStarted(actor);
      return { ok: true, hostId: this.#host.id, actor };
    } catch (err) {
      if (!this.#hostAnnounces) this.publish('actor_start_failed', { hostId: this.#host.id, ref: req.ref, error: (err as Error).message });
      throw err;
    }
  }

  /** `direct`: addressed to this host, so "not running here" is an answer; broadcast: silence. */
  async #stopActor(m: Msg, direct: boolean): Promise<CtlReply | undefined> {
    const { actor } = parseBody(stopActorRequestSchema, m);
    const stopped = await this.#host.stopActor(actor);
    if (!stopped && !direct) return undefined;
    if (!stopped) return { ok: false, error: { code: 'ACTOR_NOT_FOUND', message: `actor ${actor} is not running on host ${this.#host.id}` } };
    if (!this.#hostAnnounces) this.actorStopped(actor);
    return { ok: true, hostId: this.#host.id, actor };
  }

  async #putLink(m: Msg): Promise<CtlReply> {
    const input = parseBody(linkInputSchema, m);
    const link = await this.#host.putLink(input);
    if (!this.#hostAnnounces) this.linkPut(link);
    return { ok: true, hostId: this.#host.id, link };
  }

  async #deleteLink(m: Msg): Promise<CtlReply> {
    const req = parseBody(deleteLinkRequestSchema, m);
    const deleted = await this.#host.deleteLink(req.actor, req.contract, req.linkName);
    if (deleted && !this.#hostAnnounces) this.linkDeleted({ actor: req.actor, contract: canonicalContract(req.contract), linkName: normalizeLinkName(req.linkName) });
    return { ok: true, hostId: this.#host.id, deleted };
  }
}
