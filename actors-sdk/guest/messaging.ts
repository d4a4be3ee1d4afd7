/**
 * The messaging capability (`wasmlet:messaging`): publish, and request with a timeout; messages
 * on the link's subscriptions (`SUBSCRIPTION`) arrive at the actor module's `handleMessage`
 * export:
 *
 *   export function handleMessage(msg: Message) { keyvalue.add(msg.subject); }
 *
 * `messaging` uses the default link; `messaging.link(name)` another one.
 */
/// <reference path="./world.d.ts" />
import * as raw from 'wasmlet:actor/messaging@0.1.0';
import { WithBody } from './http.ts';
import { attempt, err, type Result } from './result.ts';

const utf8 = new TextEncoder();

/** A message delivered to the actor. */
export class Message extends WithBody {
  readonly subject: string;
  /** Where an answer goes ("" when none is expected): `messaging.publish(msg.replyTo, answer)`. */
  readonly replyTo: string;

  constructor(raw: { subject: string; replyTo: string; body: Uint8Array }) {
    super(raw.body);
    this.subject = raw.subject;
    this.replyTo = raw.replyTo;
  }
}

/** What a module exports as `handleMessage`. Throw ActorError to fail a message (the instance is kept). */
export type MessageHandler = (message: Message) => void;

export type MessageBody = string | Uint8Array;

export interface Messaging {
  /** Publishes `body` on `subject`; `replyTo` names where answers go. */
  publish(subject: string, body: MessageBody, options?: { replyTo?: string }): Result<void>;
  /** Publishes and waits for the first answer (default timeout 1000 ms); its body. */
  request(subject: string, body: MessageBody, options?: { timeoutMs?: number }): Result<Uint8Array>;
}

const bytes = (b: MessageBody) => (typeof b === 'string' ? utf8.encode(b) : b);

function bind(link: string): Messaging {
  return {
    publish: (subject, body, options = {}) => attempt(() => raw.publish(link, subject, options.replyTo ?? '', bytes(body))),
    request: (subject, body, options = {}) => {
      const t = options.timeoutMs ?? 1000;
      if (!Number.isInteger(t) || t < 1 || t > 0xffffffff) return err({ code: 'bad-request', message: `timeoutMs must be a positive integer, got ${String(t)}` });
      return attempt(() => raw.request(link, subject, bytes(body), t));
    },
  };
}

/** Messaging on the default link; `.link(name)` for a named link. */
export const messaging: Messaging & { link(name: string): Messaging } = Object.assign(bind(''), { link: (name: string) => bind(name) });
