/**
 * The client side of the lattice control interface (used by `wasmlet ctl`): asks hosts through
 * NATS, gathers answers from every host within a window where the question goes to all, reads
 * links and claims straight from the lattice's KV buckets, and streams lifecycle events.
 *
 * On a closed lattice every request is signed with this client's ctl credential, and only
 * answers and events signed by a host or provider member of the same lattice are believed;
 * anything else is skipped (and counted in `skipped`).
 */
import type { Logger } from 'pino';
import { pino } from 'pino';
import { z } from 'zod';
import { createInbox, type Msg, type NatsConnection } from 'nats';
import { WasmletError } from '../errors.ts';
import { parseWith } from '../options.ts';
import type { ActorClaims, LinkDefinition } from '../types.ts';
import { canonicalContract } from '../contracts.ts';
import { normalizeLink } from '../links.ts';
import { cloudEventSchema, type CloudEvent, type HostInfo, type HostInventory, type InventoryActor, type LinkInput, type StartActorRequest } from './control-protocol.ts';
import type { LatticeTrust, MemberRole } from './membership.ts';
import { NatsClaimsStore } from './nats-claims-store.ts';
import { NatsLinkStore } from './nats-link-store.ts';
import { NonceCache } from './replay.ts';
import { signMessage, verifyMessage } from './signed-message.ts';
import { ctlSubject, encodeSubjectToken } from './subjects.ts';

/** No host answered a request that needs one. */
export const CTL_NO_HOST = 'CTL_NO_HOST';
/** A host did not answer in time. */
export const CTL_TIMEOUT = 'CTL_TIMEOUT';

export const controlClientOptionsSchema = z
  .object({
    /** Deadline of a request one host answers, ms. Default 5000 (starting an actor may compile it). */
    timeoutMs: z.number().int().min(1).default(5000),
    /** How long answers from all hosts are gathered, ms. Default 1000. */
    gatherMs: z.number().int().min(1).default(1000),
    /** Answers and events sent further than this from this client's clock are skipped, ms. Default 60000. */
    freshnessMs: z.number().int().min(1000).default(60_000),
    /** Answers and events past this many bytes are skipped unread. Default 4 MiB (inventories of large hosts). */
    maxMessageBytes: z.number().int().min(1024).default(4 * 1024 * 1024),
  })
  .strict();
export type ControlClientOptionsInput = z.input<typeof controlClientOptionsSchema>;
export type ControlClientOptions = z.output<typeof controlClientOptionsSchema>;

/** A stream of lattice events; `close()` ends the iteration. */
export interface EventStream extends AsyncIterable<CloudEvent> {
  close(): void;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

type Reply = { ok: true; [k: string]: unknown } | { ok: false; error: { code: string; message: string } };

function parseReply(m: Msg): Reply {
  let r: unknown;
  try {
    r = JSON.parse(decoder.decode(m.data));
  } catch {
    throw new WasmletError('CTL_BAD_REPLY', 'a host answered with something that is not JSON');
  }
  if (typeof r !== 'object' || r === null || typeof (r as { ok?: unknown }).ok !== 'boolean') {
    throw new WasmletError('CTL_BAD_REPLY', 'a host answered without an "ok" field');
  }
  return r as Reply;
}

function unwrap(r: Reply): Record<string, unknown> {
  if (r.ok) return r;
  throw new WasmletError(r.error?.code ?? 'ERROR', r.error?.message ?? 'the host refused the request');
}

/** Who may answer control requests and publish events. */
const ANSWERERS: readonly MemberRole[] = ['host', 'provider'];

export class ControlClient {
  readonly options: ControlClientOptions;
  readonly trust: LatticeTrust;
  readonly #nc: NatsConnection;
  readonly #log: Logger;
  /** Answers and events skipped as unsigned, forged, stale, replayed or from the wrong role. */
  skipped = 0;

  /** `nc` stays the caller's. */
  constructor(nc: NatsConnection, trust: LatticeTrust, options: ControlClientOptionsInput = {}, logger: Logger = pino({ level: 'silent' })) {
    this.options = parseWith(controlClientOptionsSchema, 'control client options', options);
    this.trust = trust;
    this.#nc = nc;
    this.#log = logger;
  }

  get lattice(): string {
    return this.trust.lattice;
  }

  /** Every host that answers a ping within the gather window. */
  async getHosts(): Promise<HostInfo[]> {
    const replies = await this.#gather(ctlSubject(this.trust.prefix, 'ping', 'hosts'), {});
    return replies.flatMap((r) => (r.ok ? [r.host as HostInfo] : [])).sort((a, b) => a.hostId.localeCompare(b.hostId));
  }

  /** One host's inventory, or every host's (gathered) when `hostId` is not given. */
  async getInventory(hostId?: string): Promise<HostInventory[]> {
    if (hostId) return [(await this.#ask(ctlSubject(this.trust.prefix, 'host', hostId, 'inventory'), {}, `host ${hostId}`)).inventory as HostInventory];
    const replies = await this.#gather(ctlSubject(this.trust.prefix, 'inventory'), {});
    return replies.flatMap((r) => (r.ok ? [r.inventory as HostInventory] : [])).sort((a, b) => a.hostId.localeCompare(b.hostId));
  }

  /** Links as stored on the lattice (straight from the KV bucket: works with no host up). */
  async getLinks(): Promise<LinkDefinition[]> {
    const store = await NatsLinkStore.open(this.#nc, this.trust, {}, this.#log);
    try {
      return store.list().sort((a, b) => `${a.actor}/${a.contract}/${a.linkName}`.localeCompare(`${b.actor}/${b.contract}/${b.linkName}`));
    } finally {
      await store.close();
    }
  }

  /** Claims of every actor that ran on the lattice. */
  async getClaims(): Promise<ActorClaims[]> {
    const store = await NatsClaimsStore.open(this.#nc, this.trust, {}, this.#log);
    try {
      return store.list().sort((a, b) => a.sub.localeCompare(b.sub));
    } finally {
      await store.close();
    }
  }

  /** Starts an actor on `hostId`, or on any one host. */
  async startActor(request: StartActorRequest, hostId?: string): Promise<{ hostId: string; actor: InventoryActor }> {
    const subject = hostId ? ctlSubject(this.trust.prefix, 'host', hostId, 'actor', 'start') : ctlSubject(this.trust.prefix, 'actor', 'start');
    const r = await this.#ask(subject, request, hostId ? `host ${hostId}` : 'any host');
    return { hostId: r.hostId as string, actor: r.actor as InventoryActor };
  }

  /** Stops an actor on `hostId`, or on every host running it; resolves with the hosts that stopped it. */
  async stopActor(actor: string, hostId?: string): Promise<string[]> {
    if (hostId) {
      const r = await this.#ask(ctlSubject(this.trust.prefix, 'host', hostId, 'actor', 'stop'), { actor }, `host ${hostId}`);
      return [r.hostId as string];
    }
    const replies = await this.#gather(ctlSubject(this.trust.prefix, 'actor', 'stop'), { actor });
    const failed = replies.find((r) => !r.ok);
    if (failed) unwrap(failed);
    return replies.map((r) => String((r as { hostId?: unknown }).hostId)).sort();
  }

  /**
   * Puts a link through one host (which checks claims and configures a local provider). With
   * no host up, the link goes straight into the lattice bucket for hosts that join later, after
   * this client checked it against the actor's claims on the lattice (when known).
   */
  async putLink(link: LinkInput): Promise<{ link: LinkDefinition; via: 'host' | 'store'; hostId?: string }> {
    try {
      const r = await this.#ask(ctlSubject(this.trust.prefix, 'link', 'put'), link, 'any host');
      return { link: r.link as LinkDefinition, via: 'host', hostId: r.hostId as string };
    } catch (err) {
      if ((err as WasmletError).code !== CTL_NO_HOST) throw err;
    }
    const normalized = normalizeLink(link);
    const claims = await NatsClaimsStore.open(this.#nc, this.trust, {}, this.#log);
    try {
      const known = claims.get(normalized.actor);
      if (known && !(known.wascap.caps ?? []).some((c) => canonicalContract(c) === normalized.contract)) {
        throw new WasmletError('LINK_NOT_CLAIMED', `actor ${normalized.actor} does not claim ${normalized.contract}; its claims allow: ${(known.wascap.caps ?? []).join(', ') || 'nothing'}`);
      }
    } finally {
      await claims.close();
    }
    const store = await NatsLinkStore.open(this.#nc, this.trust, {}, this.#log);
    try {
      await store.put(normalized);
      return { link: store.get(link.actor, link.contract, link.linkName)!, via: 'store' };
    } finally {
      await store.close();
    }
  }

  /** Deletes a link through one host, or straight from the bucket when no host is up. */
  async deleteLink(actor: string, contract: string, linkName?: string): Promise<{ deleted: boolean; via: 'host' | 'store' }> {
    const req = { actor, contract: canonicalContract(contract), ...(linkName ? { linkName } : {}) };
    try {
      const r = await this.#ask(ctlSubject(this.trust.prefix, 'link', 'del'), req, 'any host');
      return { deleted: r.deleted as boolean, via: 'host' };
    } catch (err) {
      if ((err as WasmletError).code !== CTL_NO_HOST) throw err;
    }
    const store = await NatsLinkStore.open(this.#nc, this.trust, {}, this.#log);
    try {
      return { deleted: (await store.delete(actor, contract, linkName)) !== undefined, via: 'store' };
    } finally {
      await store.close();
    }
  }

  /**
   * Lattice events as they happen (only those of `types`, short names like `actor_started`,
   * when given). Malformed events are skipped. `close()` (or `signal`) ends the stream.
   */
  watch(options: { types?: string[]; signal?: AbortSignal } = {}): EventStream {
    const base = `${this.trust.prefix}.evt`;
    const subjects = options.types?.length ? options.types.map((t) => `${base}.${encodeSubjectToken(t)}`) : [`${base}.>`];
    const queue: CloudEvent[] = [];
    // Each stream refuses a message it has seen (the same event reaches every stream once).
    const nonces = new NonceCache();
    let wake: (() => void) | undefined;
    let done = false;
    const subs = subjects.map((s) =>
      this.#nc.subscribe(s, {
        callback: (err, m) => {
          if (err) return;
          if (!this.#believe(m, nonces)) return;
          try {
            const ev = cloudEventSchema.parse(JSON.parse(decoder.decode(m.data))) as CloudEvent;
            queue.push(ev);
            wake?.();
          } catch {
            this.#log.debug({ subject: m.subject }, 'skipped a malformed lattice event');
          }
        },
      }),
    );
    const close = () => {
      if (done) return;
      done = true;
      for (const s of subs) s.unsubscribe();
      wake?.();
    };
    options.signal?.addEventListener('abort', close, { once: true });
    void this.#nc.closed().then(close);
    const ready = this.#nc.flush().catch(() => undefined);
    return {
      close,
      async *[Symbol.asyncIterator]() {
        await ready;
        try {
          while (true) {
            while (queue.length) yield queue.shift()!;
            if (done) return;
            await new Promise<void>((r) => (wake = r));
            wake = undefined;
          }
        } finally {
          close();
        }
      },
    };
  }

  /** Resolves once the server has the stream's subscriptions (useful before triggering events). */
  flush(): Promise<void> {
    return this.#nc.flush();
  }

  // ------------------------------------------------------------------ transport

  /** True when `m` is signed by a host or provider member of this lattice (always on an open lattice). */
  #believe(m: Msg, nonces: NonceCache): boolean {
    if (m.data.byteLength > this.options.maxMessageBytes) {
      this.skipped++;
      this.#log.debug({ subject: m.subject, bytes: m.data.byteLength }, 'skipped an oversized lattice message');
      return false;
    }
    try {
      verifyMessage(this.trust, m, { roles: ANSWERERS, nonces, freshnessMs: this.options.freshnessMs });
      return true;
    } catch (err) {
      this.skipped++;
      this.#log.debug({ subject: m.subject, reason: (err as Error).message }, 'skipped a lattice message');
      return false;
    }
  }

  /** Publishes a signed request on `subject` with `inbox` as its reply subject. */
  #publish(subject: string, body: unknown, inbox: string): void {
    const payload = encoder.encode(JSON.stringify(body));
    const headers = signMessage(this.trust, subject, inbox, payload);
    this.#nc.publish(subject, payload, { reply: inbox, ...(headers ? { headers } : {}) });
  }

  /** One request one host answers: the first believable answer wins. */
  async #ask(subject: string, body: unknown, who: string): Promise<Record<string, unknown>> {
    const inbox = createInbox();
    let settle!: (r: { reply?: Reply; noResponders?: true }) => void;
    const answered = new Promise<{ reply?: Reply; noResponders?: true }>((r) => (settle = r));
    const nonces = new NonceCache();
    const sub = this.#nc.subscribe(inbox, {
      callback: (err, m) => {
        if (err) return;
        if (m.headers?.code === 503 && m.data.byteLength === 0) return settle({ noResponders: true });
        if (!this.#believe(m, nonces)) return;
        try {
          settle({ reply: parseReply(m) });
        } catch (e) {
          this.#log.debug({ err: (e as Error).message }, 'skipped a malformed control reply');
        }
      },
    });
    let timer: NodeJS.Timeout | undefined;
    try {
      this.#publish(subject, body, inbox);
      const r = await Promise.race([answered, new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), this.options.timeoutMs)))]);
      if (r === undefined) throw new WasmletError(CTL_TIMEOUT, `${who} on lattice ${this.trust.lattice} did not answer within ${this.options.timeoutMs} ms`);
      if (r.noResponders) throw new WasmletError(CTL_NO_HOST, `no ${who === 'any host' ? 'host' : who} on lattice ${this.trust.lattice} answers`);
      return unwrap(r.reply!);
    } catch (err) {
      if (err instanceof WasmletError) throw err;
      throw new WasmletError('CTL_UNAVAILABLE', `cannot reach the lattice: ${(err as Error).message}`, { cause: err });
    } finally {
      clearTimeout(timer);
      sub.unsubscribe();
    }
  }

  /** Publishes to every host and collects the believable replies that arrive within the gather window. */
  async #gather(subject: string, body: unknown): Promise<Reply[]> {
    const inbox = createInbox();
    const replies: Reply[] = [];
    const nonces = new NonceCache();
    const sub = this.#nc.subscribe(inbox, {
      callback: (err, m) => {
        if (err || (m.headers && m.headers.code === 503)) return; // 503: nobody listens
        if (!this.#believe(m, nonces)) return;
        try {
          replies.push(parseReply(m));
        } catch (e) {
          this.#log.debug({ err: (e as Error).message }, 'skipped a malformed control reply');
        }
      },
    });
    try {
      this.#publish(subject, body, inbox);
      await new Promise((r) => setTimeout(r, this.options.gatherMs));
    } finally {
      sub.unsubscribe();
    }
    return replies;
  }
}
