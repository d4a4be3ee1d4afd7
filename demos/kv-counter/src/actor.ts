/**
 * kv-counter: the TypeScript twin of waSCC's kvcounter. Each request adds 1 to the counter whose
 * key is the request path with "/" replaced by ":" (`/a/b` → `:a:b`) and answers
 * 200 `{"counter":N}`. When the key-value call fails, the actor answers with an error
 * (the HTTP server replies 500) and keeps its instance.
 */
import { ActorError, handler, json, keyvalue } from '../../../actors-sdk/guest/index.ts';

export default handler((req) => {
  const key = req.path.replaceAll('/', ':');
  const added = keyvalue.add(key, 1);
  if (!added.ok) throw new ActorError(`cannot count ${key}: ${added.error.message}`);
  return json({ counter: added.value });
});
