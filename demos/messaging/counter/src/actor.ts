/**
 * messaging-counter: subscribed (by its messaging link) to the paths messaging-publisher
 * publishes, it counts each path in key-value (`count:<path>`) and the total (`count`). Over
 * HTTP it answers how often a path was seen: GET /a/b → {"path":"/a/b","count":N,"total":M}.
 * A message it asks an answer for (replyTo) gets the new count back.
 */
import { ActorError, handler, json, keyvalue, messaging, type Message } from '../../../../actors-sdk/guest/index.ts';

export function handleMessage(msg: Message): void {
  const path = msg.text();
  const counted = keyvalue.add(`count:${path}`, 1);
  if (!counted.ok) throw new ActorError(`cannot count ${path}: ${counted.error.message}`);
  keyvalue.add('count', 1);
  if (msg.replyTo) messaging.publish(msg.replyTo, String(counted.value));
}

function read(key: string): number {
  const v = keyvalue.get(key);
  if (!v.ok) throw new ActorError(`cannot read ${key}: ${v.error.message}`);
  return v.value === undefined ? 0 : Number(v.value);
}

export default handler((req) => json({ path: req.path, count: read(`count:${req.path}`), total: read('count') }));
