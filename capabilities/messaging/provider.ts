/**
 * The messaging capability provider (`wasmlet:messaging`, aliases `wascc:messaging` and
 * `wasmcloud:messaging`), with waSCC's operations and payloads (codec.ts).
 *
 * Link values:
 * - `SUBSCRIPTION`: comma-separated subjects (NATS wildcards allowed), each optionally
 *   `subject|queue`; every message on them is delivered to the actor (`DeliverMessage`).
 * - `QUEUEGROUP_NAME` (waSCC's): the queue group of entries that name none.
 * - `URL`: the NATS server the link's messages go to (`nats://…`); without it, the provider's
 *   in-process broker (messages stay among the actors this provider serves).
 *
 * Subscriptions follow the link: put again, they are replaced (new ones first); deleted, they
 * end. A subscription without a queue group still gets an implicit one per actor and link
 * (`wasmlet_<actor>_<link>`), so an actor served by several providers on a lattice gets each
 * message once, not once per provider.
 *
 * Delivery is at most once, as NATS core is: each link delivers up to `deliveryConcurrency`
 * messages at a time (in order when that is 1) and holds up to `maxPendingDeliveries` more;
 * past that, messages are dropped and counted (a warning says so), so a slow actor never grows
 * the host's memory without bound. A delivery the actor fails is logged, not retried.
 */
import { pino, type Logger } from 'pino';
import { z } from 'zod';
import { MESSAGING, OptionsError, encode, normalizeLinkName } from '../../host/index.ts';
import type { CapabilityProvider, LinkDefinition, ProviderCall, ProviderContext } from '../../host/index.ts';
import { LinkError, OperationError } from '../errors.ts';
import { unknownOperation } from '../payload.ts';
import { BrokerRequestError, InProcessBroker, type BrokerMessage, type BrokerSubscription, type MessageBroker } from './broker.ts';
import { encodeDelivery, MESSAGING_OPERATIONS, OP_DELIVER_MESSAGE, OP_PUBLISH, OP_REQUEST, parsePublish, parseRequest } from './codec.ts';
import { NatsBrokers } from './nats-broker.ts';
import { SubjectRules } from './subjects.ts';

const optionsSchema = z
  .object({
    /** Deadline of a link's first connection to its `URL`, ms. Default 2000. */
    connectTimeoutMs: z.number().int().positive().default(2000),
    /** Largest body an actor may publish or send in a request, bytes. Default 1 MiB (NATS's default max_payload). */
    maxMessageBytes: z.number().int().positive().default(1024 * 1024),
    /** A `Request`'s timeout is capped at this, ms. Default 10000. */
    maxRequestTimeoutMs: z.number().int().positive().default(10_000),
    /** Subscriptions one link may hold. Default 64. */
    maxSubscriptionsPerLink: z.number().int().positive().default(64),
    /** Messages delivered to one link's actor at the same time. Default 16; 1 keeps them in order. */
    deliveryConcurrency: z.number().int().positive().max(1024).default(16),
    /** Messages one link holds while its actor is busy; more are dropped. Default 10000. */
    maxPendingDeliveries: z.number().int().min(0).default(10_000),
    /** Deadline of one delivery, ms (default: the host's invocation deadline). */
    deliveryDeadlineMs: z.number().int().positive().optional(),
    /** First subject tokens no actor may publish to or subscribe under (besides `$…`). Default `wasmlet`, the lattice's own. */
    reservedSubjectTokens: z.array(z.string().min(1)).default(['wasmlet']),
  })
  .strict();

export type MessagingProviderOptions = z.output<typeof optionsSchema>;
export type MessagingProviderOptionsInput = z.input<typeof optionsSchema>;

export function parseMessagingProviderOptions(input: unknown = {}): MessagingProviderOptions {
  const r = optionsSchema.safeParse(input ?? {});
  if (!r.success) throw new OptionsError(`invalid messaging provider options: ${z.prettifyError(r.error)}`, { cause: r.error });
  return r.data;
}

const EMPTY_REPLY = encode({});
const DROP_LOG_EVERY = 1000;

/** One link: where its messages go, its subscriptions, and its delivery queue. */
class MessagingLink {
  readonly subs: BrokerSubscription[] = [];
  readonly #pending: BrokerMessage[] = [];
  #head = 0;
  #running = 0;
  dropped = 0;
  delivered = 0;
  failed = 0;
  closed = false;

  constructor(
    readonly actor: string,
    readonly linkName: string,
    readonly broker: MessageBroker,
    readonly url: string | undefined,
    readonly provider: MessagingProvider,
  ) {}

  /** A broker listener (a method, not a closure per message). */
  onMessage(m: BrokerMessage): void {
    if (this.closed) return;
    const p = this.provider.options;
    if (this.#running < p.deliveryConcurrency) {
      this.#run(m);
      return;
    }
    if (this.#pending.length - this.#head >= p.maxPendingDeliveries) {
      if (this.dropped++ % DROP_LOG_EVERY === 0) this.provider.logger.warn({ actor: this.actor, linkName: this.linkName, subject: m.subject, dropped: this.dropped }, 'messaging: the actor is not keeping up; messages dropped');
      return;
    }
    this.#pending.push(m);
  }

  #run(m: BrokerMessage): void {
    this.#running++;
    this.provider.deliver(this, m).then(this.#next, this.#next);
  }

  readonly #next = (): void => {
    this.#running--;
    this.delivered++;
    if (this.closed || this.#head >= this.#pending.length) return;
    const m = this.#pending[this.#head]!;
    this.#pending[this.#head++] = undefined as unknown as BrokerMessage;
    if (this.#head > 1024 && this.#head * 2 > this.#pending.length) {
      this.#pending.splice(0, this.#head);
      this.#head = 0;
    }
    this.#run(m);
  };

  close(): void {
    this.closed = true;
    for (const s of this.subs) s.close();
    this.subs.length = 0;
    this.#pending.length = 0;
    this.#head = 0;
  }
}

export class MessagingProvider implements CapabilityProvider {
  readonly contract = MESSAGING;
  readonly name = 'messaging';
  readonly options: MessagingProviderOptions;
  logger: Logger = pino({ level: 'silent' });
  readonly #rules: SubjectRules;
  #local: MessageBroker;
  readonly #ownsLocal: boolean;
  readonly #nats: NatsBrokers;
  readonly #links = new Map<string, MessagingLink>();
  #ctx: ProviderContext | undefined;

  /** `broker`: the in-process broker links without `URL` use (default: one of this provider's own). */
  constructor(options: MessagingProviderOptionsInput = {}, deps: { broker?: MessageBroker } = {}) {
    this.options = parseMessagingProviderOptions(options);
    this.#rules = new SubjectRules(this.options.reservedSubjectTokens);
    this.#local = deps.broker ?? new InProcessBroker();
    this.#ownsLocal = deps.broker === undefined;
    this.#nats = new NatsBrokers({ connectTimeoutMs: this.options.connectTimeoutMs, logger: () => this.logger });
  }

  async start(ctx: ProviderContext): Promise<void> {
    this.#ctx = ctx;
    this.logger = ctx.logger.child({ provider: this.name });
    // A provider started again after stop gets a fresh broker of its own.
    if (this.#ownsLocal && this.#localClosed) this.#local = new InProcessBroker();
    this.#localClosed = false;
  }

  #localClosed = false;

  async putLink(link: LinkDefinition): Promise<void> {
    if (!this.#ctx) throw new LinkError('the messaging provider is stopped');
    const values = link.values ?? {};
    const linkName = normalizeLinkName(link.linkName);
    const subscriptions = this.#rules.parseSubscriptions(values.SUBSCRIPTION, values.QUEUEGROUP_NAME, this.options.maxSubscriptionsPerLink);
    const url = values.URL?.trim() || undefined;
    if (url !== undefined && !/^(nats|tls|wss?):\/\//i.test(url)) throw new LinkError(`URL must be a nats:// (or tls://, ws://, wss://) URL, got ${JSON.stringify(url)}`);
    const broker = url === undefined ? this.#local : await this.#nats.acquire(url);
    const next = new MessagingLink(link.actor, linkName, broker, url, this);
    const implicitQueue = `wasmlet_${link.actor}_${linkName}`;
    try {
      for (const s of subscriptions) next.subs.push(broker.subscribe(s.subject, s.queue ?? implicitQueue, (m) => next.onMessage(m)));
    } catch (err) {
      next.close();
      if (url !== undefined) await this.#nats.release(url);
      throw new LinkError(`cannot subscribe: ${(err as Error).message}`, { cause: err });
    }
    const key = `${link.actor}\n${linkName}`;
    const previous = this.#links.get(key);
    this.#links.set(key, next);
    this.logger.debug({ actor: link.actor, linkName, broker: broker.describe, subscriptions: subscriptions.map((s) => (s.queue ? `${s.subject}|${s.queue}` : s.subject)) }, 'messaging link put');
    if (previous) await this.#retire(previous);
  }

  async deleteLink(link: LinkDefinition): Promise<void> {
    const key = `${link.actor}\n${normalizeLinkName(link.linkName)}`;
    const active = this.#links.get(key);
    if (!active) return;
    this.#links.delete(key);
    await this.#retire(active);
  }

  async #retire(link: MessagingLink): Promise<void> {
    link.close();
    if (link.url !== undefined) await this.#nats.release(link.url);
  }

  /** Delivery counts of a link, for diagnostics; undefined when not linked. */
  linkStats(actor: string, linkName?: string): { delivered: number; dropped: number; failed: number; broker: string } | undefined {
    const l = this.#links.get(`${actor}\n${normalizeLinkName(linkName)}`);
    return l && { delivered: l.delivered, dropped: l.dropped, failed: l.failed, broker: l.broker.describe };
  }

  /** Invokes `DeliverMessage` on the link's actor; failures are logged. Never rejects. */
  async deliver(link: MessagingLink, m: BrokerMessage): Promise<void> {
    const ctx = this.#ctx;
    if (!ctx) return;
    try {
      await ctx.invokeActor(link.actor, OP_DELIVER_MESSAGE, encodeDelivery(m), this.options.deliveryDeadlineMs ? { deadlineMs: this.options.deliveryDeadlineMs } : undefined);
    } catch (err) {
      // The first failure of a run, then one line per thousand: an actor that is gone must not flood the log.
      if (link.failed++ % DROP_LOG_EVERY === 0) {
        this.logger.warn({ actor: link.actor, linkName: link.linkName, subject: m.subject, err: (err as Error).message, code: (err as { code?: string }).code, failed: link.failed }, 'messaging: delivery failed');
      }
    }
  }

  async handle(call: ProviderCall): Promise<Uint8Array> {
    const linkName = normalizeLinkName(call.linkName);
    const link = this.#links.get(`${call.actor}\n${linkName}`);
    if (call.operation !== OP_PUBLISH && call.operation !== OP_REQUEST) unknownOperation('messaging', call.operation, MESSAGING_OPERATIONS);
    if (!link) throw new OperationError('NOT_LINKED', this.#ctx ? `actor ${call.actor} has no messaging link named "${linkName}"` : 'the messaging provider is stopped');
    if (call.operation === OP_PUBLISH) {
      const m = parsePublish(call.msg, this.options.maxMessageBytes);
      this.#rules.checkPublish(OP_PUBLISH, m.subject);
      if (m.replyTo) this.#rules.checkPublish(`${OP_PUBLISH} replyTo`, m.replyTo);
      try {
        link.broker.publish(m.subject, m.body, m.replyTo);
      } catch (err) {
        throw new OperationError('BACKEND_ERROR', `${OP_PUBLISH} on ${m.subject}: unavailable: ${(err as Error).message}`, { cause: err });
      }
      return EMPTY_REPLY;
    }
    const r = parseRequest(call.msg, this.options.maxMessageBytes);
    this.#rules.checkPublish(OP_REQUEST, r.subject);
    const timeoutMs = Math.min(r.timeoutMs, this.options.maxRequestTimeoutMs);
    try {
      return await link.broker.request(r.subject, r.body, timeoutMs);
    } catch (err) {
      const reason = err instanceof BrokerRequestError ? err.reason : 'failed';
      const what =
        reason === 'timeout' ? `timed out after ${timeoutMs} ms (no answer)` : reason === 'no-responders' ? 'unavailable: no responders (nothing subscribes to it)' : `unavailable: ${(err as Error).message}`;
      throw new OperationError('BACKEND_ERROR', `${OP_REQUEST} on ${r.subject} ${what}`, { cause: err });
    }
  }

  async stop(): Promise<void> {
    this.#ctx = undefined;
    const links = [...this.#links.values()];
    this.#links.clear();
    for (const l of links) l.close();
    await this.#nats.closeAll();
    if (this.#ownsLocal) {
      this.#localClosed = true;
      await this.#local.close();
    }
  }
}
