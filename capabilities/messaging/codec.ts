/**
 * waSCC's messaging contract on the wire (wascc-codec `messaging`, msgpack with camelCase names):
 * - `Publish` (actor → provider): `BrokerMessage {subject, replyTo, body: bin}`; `replyTo` empty
 *   when no answer is wanted. The reply is an empty map (waSCC's provider answered zero bytes;
 *   a waSCC guest discards it either way).
 * - `Request` (actor → provider): `RequestMessage {subject, body: bin, timeout: i64 ms}`; the
 *   reply is the answer's raw body, no wrapper, as waSCC's provider answered.
 * - `DeliverMessage` (provider → actor): `BrokerMessage {subject, replyTo, body}` for each
 *   message on the link's subscriptions; the actor's answer is ignored (an actor answers a
 *   request by publishing to `replyTo`).
 */
import { MsgpackWriter, sizeBin, sizeHeader, sizeStr } from '../../host/index.ts';
import { OperationError } from '../errors.ts';
import { bytesField, decodeRequest, integerField, stringField } from '../payload.ts';
import type { BrokerMessage } from './broker.ts';

export const OP_PUBLISH = 'Publish';
export const OP_REQUEST = 'Request';
export const OP_DELIVER_MESSAGE = 'DeliverMessage';
export const MESSAGING_OPERATIONS = [OP_PUBLISH, OP_REQUEST] as const;

export function parsePublish(msg: Uint8Array, maxBytes: number): BrokerMessage {
  const req = decodeRequest(OP_PUBLISH, msg, ['subject', 'replyTo', 'body']);
  const body = bytesField(OP_PUBLISH, req, 'body');
  if (body.byteLength > maxBytes) throw new OperationError('BAD_REQUEST', `${OP_PUBLISH}: the body is ${body.byteLength} bytes, more than ${maxBytes}`);
  return { subject: stringField(OP_PUBLISH, req, 'subject'), replyTo: stringField(OP_PUBLISH, req, 'replyTo', ''), body };
}

export function parseRequest(msg: Uint8Array, maxBytes: number): { subject: string; body: Uint8Array; timeoutMs: number } {
  const req = decodeRequest(OP_REQUEST, msg, ['subject', 'body', 'timeout']);
  const body = bytesField(OP_REQUEST, req, 'body');
  if (body.byteLength > maxBytes) throw new OperationError('BAD_REQUEST', `${OP_REQUEST}: the body is ${body.byteLength} bytes, more than ${maxBytes}`);
  return { subject: stringField(OP_REQUEST, req, 'subject'), body, timeoutMs: integerField(OP_REQUEST, req, 'timeout', 1, Number.MAX_SAFE_INTEGER) };
}

const KEYS = sizeStr('subject') + sizeStr('replyTo') + sizeStr('body');

/** The `DeliverMessage` payload, written in one exact-size buffer (it is posted to a worker). */
export function encodeDelivery(m: BrokerMessage): Uint8Array {
  const w = new MsgpackWriter(sizeHeader(3) + KEYS + sizeStr(m.subject) + sizeStr(m.replyTo) + sizeBin(m.body.byteLength), true);
  return w.mapHeader(3).str('subject').str(m.subject).str('replyTo').str(m.replyTo).str('body').bin(m.body).done();
}
