/**
 * The messaging broker on a NATS server (a link's `URL`). Connections are shared: one per URL
 * for every link of a provider that names it, opened on the first link and drained when the
 * last one goes (`NatsBrokers`).
 */
import { connect, ErrorCode, type NatsConnection, type Msg, type NatsError } from 'nats';
import type { Logger } from 'pino';
import { redactServer } from '../../host/index.ts';
import { LinkError } from '../errors.ts';
import { BrokerRequestError, type BrokerMessage, type BrokerSubscription, type MessageBroker, type MessageListener } from './broker.ts';

const EMPTY = new Uint8Array(0);

export class NatsBroker implements MessageBroker {
  readonly describe: string;
  readonly #nc: NatsConnection;

  constructor(nc: NatsConnection, describe: string) {
    this.#nc = nc;
    this.describe = describe;
  }

  publish(subject: string, body: Uint8Array, replyTo = ''): void {
    this.#nc.publish(subject, body, replyTo ? { reply: replyTo } : undefined);
  }

  async request(subject: string, body: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    try {
      return (await this.#nc.request(subject, body, { timeout: timeoutMs })).data;
    } catch (err) {
      const code = (err as NatsError).code;
      if (code === ErrorCode.NoResponders) throw new BrokerRequestError('no-responders', `no responders on ${subject}`, { cause: err });
      if (code === ErrorCode.Timeout) throw new BrokerRequestError('timeout', `no answer on ${subject} within ${timeoutMs} ms`, { cause: err });
      if (this.#nc.isClosed()) throw new BrokerRequestError('closed', `the NATS connection to ${this.describe} is closed`, { cause: err });
      throw new BrokerRequestError('failed', `request on ${subject} failed: ${(err as Error).message}`, { cause: err });
    }
  }

  subscribe(subject: string, queue: string | undefined, listener: MessageListener): BrokerSubscription {
    const sub = this.#nc.subscribe(subject, {
      ...(queue ? { queue } : {}),
      callback: (err: NatsError | null, msg: Msg) => {
        if (err) return;
        const message: BrokerMessage = { subject: msg.subject, replyTo: msg.reply ?? '', body: msg.data ?? EMPTY };
        listener(message);
      },
    });
    return { close: () => sub.unsubscribe() };
  }

  async close(): Promise<void> {
    // Drain when connected; either way close, or reconnect attempts would keep the process alive.
    await Promise.race([this.#nc.drain().catch(() => {}), new Promise((r) => setTimeout(r, 2000).unref())]);
    await this.#nc.close().catch(() => {});
  }
}

interface Entry {
  broker: Promise<NatsBroker>;
  refs: number;
}

/** One NATS connection per URL, shared by the links that name it (reference-counted). */
export class NatsBrokers {
  readonly #entries = new Map<string, Entry>();
  readonly #connectTimeoutMs: number;
  readonly #logger: () => Logger;

  constructor(options: { connectTimeoutMs: number; logger: () => Logger }) {
    this.#connectTimeoutMs = options.connectTimeoutMs;
    this.#logger = options.logger;
  }

  /** A broker for `url`; the link that asked must `release(url)` when it is done. Rejects with LinkError. */
  async acquire(url: string): Promise<NatsBroker> {
    let entry = this.#entries.get(url);
    if (!entry) {
      const shown = redactServer(url);
      const broker = connect({ servers: url, name: 'wasmlet-messaging', timeout: this.#connectTimeoutMs, maxReconnectAttempts: -1, reconnectTimeWait: 250 }).then(
        (nc) => {
          void (async () => {
            for await (const s of nc.status()) if (s.type === 'disconnect' || s.type === 'reconnect') this.#logger().warn({ nats: shown, status: s.type }, 'messaging NATS connection');
          })();
          return new NatsBroker(nc, `nats ${shown}`);
        },
        (err: unknown) => {
          this.#entries.delete(url);
          throw new LinkError(`cannot connect to the messaging NATS server ${shown}: ${(err as Error).message}`, { cause: err });
        },
      );
      entry = { broker, refs: 0 };
      this.#entries.set(url, entry);
    }
    entry.refs++;
    try {
      return await entry.broker;
    } catch (err) {
      entry.refs--;
      throw err;
    }
  }

  async release(url: string): Promise<void> {
    const entry = this.#entries.get(url);
    if (!entry || --entry.refs > 0) return;
    this.#entries.delete(url);
    await (await entry.broker.catch(() => undefined))?.close();
  }

  async closeAll(): Promise<void> {
    const all = [...this.#entries.values()];
    this.#entries.clear();
    await Promise.allSettled(all.map(async (e) => (await e.broker.catch(() => undefined))?.close()));
  }
}
