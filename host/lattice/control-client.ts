/**
 * The client side of the lattice control interface (used by `wasmlet ctl`): asks hosts through
 * NATS, gathers answers from every host within a window where the question goes to all, reads
 * links and claims straight from the lattice's KV buckets, and streams lifecycle events.
 */
import type { Logger } from 'pino';
import { pino } from 'pino';
import { z } from 'zod';
import { createInbox, type Msg, type NatsConnection } from 'nats';
import { WasmletError } from '../errors.ts';
import { parseWith } from '../options.ts';
import type { ActorClaims, LinkDefinition } from '../types.ts';
import { canonicalContract, normalizeLinkName } from '../contracts.ts';
import { cloudEventSchema, type CloudEvent, type HostInfo, type HostInventory, type InventoryActor, type LinkInput, type StartActorRequest } from './control-protocol.ts';
import { NatsClaimsStore } from './nats-claims-store.ts';
import { NatsLinkStore } from './nats-link-store.ts';
import { ctlSubject, latticePrefix, latticeIdSchema, encodeSubjectToken } from './subjects.ts';

/** No host answered a request that needs one. */
export const CTL_NO_HOST = 'CTL_NO_HOST';
/** A host did not answer in time. */
export const CTL_TIMEOUT = 'CTL_TIMEOUT';

export const controlClientOptionsSchema = z
  .object({
    lattice: latticeIdSchema.default('default'),
    /** Deadline of a request one host answers, ms. Default 5000 (starting an actor may compile it). */
    timeoutMs: z.number().int().min(1).default(5000),
    /** How long answers from all hosts are gathered, ms. Default 1000. */
    gatherMs: z.number().int().min(1).default(1000),
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

export class ControlClient {
  readonly options: ControlClientOptions;
  readonly #nc: NatsConnection;
  readonly #log: Logger;

  /** `nc` stays the caller's. */
  constructor(nc: NatsConnection, options: ControlClientOptionsInput = {}, logger: Logger = pino({ level: 'silent' })) {
    this.options = parseWith(controlClientOptionsSchema, 'control client options', options);
    this.#nc = nc;
    this.#log = logger;
  }

  /** Every host that answers a ping within the gather window. */
  async getHosts(): Promise<HostInfo[]> {
    const replies = await this.#gather(ctlSubject(this.options.lattice, 'ping', 'hosts'), {});
    return replies.flatMap((r) => (r.ok ? [r.host as HostInfo] : [])).sort((a, b) => a.hostId.localeCompare(b.hostId));
  }

  /** One host's inventory, or every host's (gathered) when `hostId` is not given. */
  async getInventory(hostId?: string): Promise<HostInventory[]> {
    if (hostId) return [(await this.#ask(ctlSubject(this.options.lattice, 'host', hostId, 'inventory'), {}, `host ${hostId}`)).inventory as HostInventory];
    const replies = await this.#gather(ctlSubject(this.options.lattice, 'inventory'), {});
    return replies.flatMap((r) => (r.ok ? [r.inventory as HostInventory] : [])).sort((a, b) => a.hostId.localeCompare(b.hostId));
  }

  /** Links as stored on the lattice (straight from the KV bucket: works with no host up). */
  async getLinks(): Promise<LinkDefinition[]> {
    const store = await NatsLinkStore.open(this.#nc, { lattice: this.options.lattice }, this.#log);
    try {
      return store.list().sort((a, b) => `${a.actor}/${a.contract}/${a.linkName}`.localeCompare(`${b.actor}/${b.contract}/${b.linkName}`));
    } finally {
      await store.close();
    }
  }

  /** Claims of every actor that ran on the lattice. */
  async getClaims(): Promise<ActorClaims[]> {
    const store = await NatsClaimsStore.open(this.#nc, { lattice: this.options.lattice });
    return (await store.list()).sort((a, b) => a.sub.localeCompare(b.sub));
  }

  /** Starts an actor on `hostId`, or on any one host. */
  async startActor(request: StartActorRequest, hostId?: string): Promise<{ hostId: string; actor: InventoryActor }> {
    const subject = hostId ? ctlSubject(this.options.lattice, 'host', hostId, 'actor', 'start') : ctlSubject(this.options.lattice, 'actor', 'start');
    const r = await this.#ask(subject, request, hostId ? `host ${hostId}` : 'any host');
    return { hostId: r.hostId as string, actor: r.actor as InventoryActor };
  }

  /** Stops an actor on `hostId`, or on every host running it; resolves with the hosts that stopped it. */
  async stopActor(actor: string, hostId?: string): Promise<string[]> {
    if (hostId) {
      const r = await this.#ask(ctlSubject(this.options.lattice, 'host', hostId, 'actor', 'stop'), { actor }, `host ${hostId}`);
      return [r.hostId as string];
    }
    const replies = await this.#gather(ctlSubject(this.options.lattice, 'actor', 'stop'), { actor });
    const failed = replies.find((r) => !r.ok);
    if (failed) unwrap(failed);
    return replies.map((r) => String((r as { hostId?: unknown }).hostId)).sort();
  }

  /**
   * Puts a link through one host (which checks claims and configures a local provider). With
   * no host up, the link goes straight into the lattice bucket for hosts that join later.
   */
  async putLink(link: LinkInput): Promise<{ link: LinkDefinition; via: 'host' | 'store'; hostId?: string }> {
    try {
      const r = await this.#ask(ctlSubject(this.options.lattice, 'link', 'put'), link, 'any host');
      return { link: r.link as LinkDefinition, via: 'host', hostId: r.hostId as string };
    } catch (err) {
      if ((err as WasmletError).code !== CTL_NO_HOST) throw err;
    }
    const store = await NatsLinkStore.open(this.#nc, { lattice: this.options.lattice }, this.#log);
    try {
      await store.put({ ...link, linkName: normalizeLinkName(link.linkName), values: Object.fromEntries(Object.entries(link.values ?? {}).map(([k, v]) => [k, String(v)])) } as LinkDefinition);
      return { link: store.get(link.actor, link.contract, link.linkName)!, via: 'store' };
    } finally {
      await store.close();
    }
  }

  /** Deletes a link through one host, or straight from the bucket when no host is up. */
  async deleteLink(actor: string, contract: string, linkName?: string): Promise<{ deleted: boolean; via: 'host' | 'store' }> {
    const req = { actor, contract: canonicalContract(contract), ...(linkName ? { linkName } : {}) };
    try {
      const r = await this.#ask(ctlSubject(this.options.lattice, 'link', 'del'), req, 'any host');
      return { deleted: r.deleted as boolean, via: 'host' };
    } catch (err) {
      if ((err as WasmletError).code !== CTL_NO_HOST) throw err;
    }
    const store = await NatsLinkStore.open(this.#nc, { lattice: this.options.lattice }, this.#log);
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
    const base = `${latticePrefix(this.options.lattice)}.evt`;
    const subjects = options.types?.length ? options.types.map((t) => `${base}.${encodeSubjectToken(t)}`) : [`${base}.>`];
    const queue: CloudEvent[] = [];
    let wake: (() => void) | undefined;
    let done = false;
    const subs = subjects.map((s) =>
      this.#nc.subscribe(s, {
        callback: (err, m) => {
          if (err) return;
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

  /** One request one host answers. */
  async #ask(subject: string, body: unknown, who: string): Promise<Record<string, unknown>> {
    let m: Msg;
    try {
      m = await this.#nc.request(subject, encoder.encode(JSON.stringify(body)), { timeout: this.options.timeoutMs });
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === '503') throw new WasmletError(CTL_NO_HOST, `no ${who === 'any host' ? 'host' : who} on lattice ${this.options.lattice} answers`, { cause: err });
      if (code === 'TIMEOUT') throw new WasmletError(CTL_TIMEOUT, `${who} on lattice ${this.options.lattice} did not answer within ${this.options.timeoutMs} ms`, { cause: err });
      throw new WasmletError('CTL_UNAVAILABLE', `cannot reach the lattice: ${(err as Error).message}`, { cause: err });
    }
    return unwrap(parseReply(m));
  }

  /** Publishes to every host and collects the replies that arrive within the gather window. */
  async #gather(subject: string, body: unknown): Promise<Reply[]> {
    const inbox = createInbox();
    const replies: Reply[] = [];
    const sub = this.#nc.subscribe(inbox, {
      callback: (err, m) => {
        if (err || (m.headers && m.headers.code === 503)) return; // 503: nobody listens
        try {
          replies.push(parseReply(m));
        } catch (e) {
          this.#log.debug({ err: (e as Error).message }, 'skipped a malformed control reply');
        }
      },
    });
    try {
      this.#nc.publish(subject, encoder.encode(JSON.stringify(body)), { reply: inbox });
      await new Promise((r) => setTimeout(r, this.options.gatherMs));
    } finally {
      sub.unsubscribe();
    }
    return replies;
  }
}
