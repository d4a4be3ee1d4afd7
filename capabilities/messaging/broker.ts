/**
 * Where the messaging provider's messages go: a small broker interface with NATS semantics
 * (subjects with `*`/`>` wildcards, queue groups, request/reply through an inbox), an in-process
 * default, and NATS beside it (nats-broker.ts).
 */
import { randomBytes } from 'node:crypto';
import { subjectMatches } from './subjects.ts';

export interface BrokerMessage {
  subject: string;
  /** Where an answer goes; empty when none is expected. */
  replyTo: string;
  body: Uint8Array;
}

export type MessageListener = (message: BrokerMessage) => void;

export interface BrokerSubscription {
  close(): void;
}

/** Why a request failed: nobody listens on the subject, or no answer came in time. */
export class BrokerRequestError extends Error {
  constructor(
    readonly reason: 'no-responders' | 'timeout' | 'closed' | 'failed',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'BrokerRequestError';
  }
}

export interface MessageBroker {
  /** Human-readable, for logs (never credentials). */
  readonly describe: string;
  publish(subject: string, body: Uint8Array, replyTo?: string): void;
  /** Publishes with a fresh inbox as reply subject; resolves with the first answer's body. Rejects with BrokerRequestError. */
  request(subject: string, body: Uint8Array, timeoutMs: number): Promise<Uint8Array>;
  /** Every message on `subject` (wildcards allowed); with `queue`, one member of the group gets each. */
  subscribe(subject: string, queue: string | undefined, listener: MessageListener): BrokerSubscription;
  close(): Promise<void>;
}

interface Sub {
  subject: string;
  queue: string | undefined;
  listener: MessageListener;
}

/**
 * The in-process broker: delivers to the subscriptions of this process, each on a later turn (a
 * publisher never runs listeners re-entrantly). Queue groups take turns.
 */
export class InProcessBroker implements MessageBroker {
  readonly describe = 'in-process';
  readonly #subs = new Set<Sub>();
  readonly #turns = new Map<string, number>();
  #closed = false;

  publish(subject: string, body: Uint8Array, replyTo = ''): void {
    if (this.#closed) throw new Error('the in-process broker is closed');
    const message: BrokerMessage = { subject, replyTo, body };
    const groups = new Map<string, Sub[]>();
    for (const sub of this.#subs) {
      if (!subjectMatches(sub.subject, subject)) continue;
      if (sub.queue === undefined) {
        queueMicrotask(() => deliver(this.#subs, sub, message));
        continue;
      }
      const key = `${sub.subject}|${sub.queue}`;
      const members = groups.get(key);
      if (members) members.push(sub);
      else groups.set(key, [sub]);
    }
    for (const [key, members] of groups) {
      const turn = this.#turns.get(key) ?? 0;
      this.#turns.set(key, turn + 1);
      const sub = members[turn % members.length]!;
      queueMicrotask(() => deliver(this.#subs, sub, message));
    }
  }

  request(subject: string, body: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    if (this.#closed) return Promise.reject(new BrokerRequestError('closed', 'the in-process broker is closed'));
    if (![...this.#subs].some((s) => subjectMatches(s.subject, subject))) {
      return Promise.reject(new BrokerRequestError('no-responders', `no responders on ${subject}`));
    }
    const inbox = `_INBOX.${randomBytes(12).toString('hex')}`;
    return new Promise<Uint8Array>((resolve, reject) => {
      const timer = setTimeout(() => {
        sub.close();
        reject(new BrokerRequestError('timeout', `no answer on ${subject} within ${timeoutMs} ms`));
      }, timeoutMs);
      const sub = this.subscribe(inbox, undefined, (m) => {
        clearTimeout(timer);
        sub.close();
        resolve(m.body);
      });
      this.publish(subject, body, inbox);
    });
  }

  subscribe(subject: string, queue: string | undefined, listener: MessageListener): BrokerSubscription {
    const sub: Sub = { subject, queue, listener };
    this.#subs.add(sub);
    return { close: () => void this.#subs.delete(sub) };
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#subs.clear();
  }
}

function deliver(subs: Set<Sub>, sub: Sub, message: BrokerMessage): void {
  // A subscription closed since the publish gets nothing.
  if (subs.has(sub)) sub.listener(message);
}
