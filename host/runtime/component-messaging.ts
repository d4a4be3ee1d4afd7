/**
 * The messaging contract's delivery (waSCC's `DeliverMessage`: msgpack `{subject, replyTo, body}`)
 * to the world's typed `message-types.message`, for component actors.
 */
import { asBytes, decode } from '../codec.ts';
import { payloadText } from './component-http.ts';
import { GuestError } from './runtime.ts';

export const OP_DELIVER_MESSAGE = 'DeliverMessage';

/** What a handled message answers: msgpack nil, as wascc-actor's `Ok(())`. */
export const NIL_REPLY: Uint8Array = new Uint8Array([0xc0]);

export interface WitMessage {
  subject: string;
  replyTo: string;
  body: Uint8Array;
}

function text(value: unknown, field: string): string {
  return payloadText(value, OP_DELIVER_MESSAGE, field);
}

/** Decodes a DeliverMessage payload. Throws GuestError (the instance is untouched) when it is not one. */
export function toWitMessage(payload: Uint8Array): WitMessage {
  let value: unknown;
  try {
    value = decode(payload);
  } catch (e) {
    throw new GuestError(`bad DeliverMessage payload: ${(e as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value) || value instanceof Uint8Array) throw new GuestError('bad DeliverMessage payload: not a map');
  const m = value as Record<string, unknown>;
  let body: Uint8Array;
  try {
    body = asBytes(m.body);
  } catch {
    throw new GuestError('bad DeliverMessage payload: body is not bytes');
  }
  return { subject: text(m.subject, 'subject'), replyTo: text(m.replyTo, 'replyTo'), body };
}
