/**
 * hello: answers every request with a greeting read from the actor's config.
 * (Inside this repository the SDK is imported by path; actor projects made with
 * `wasmlet actor new` import it as `@wasmlet/actor`.)
 */
import { config, handler, json, text } from '../../../actors-sdk/guest/index.ts';

export default handler((req) => {
  const greeting = config.getOr('GREETING', 'Hello');
  const name = req.query('name') ?? config.getOr('NAME', 'world');
  if (req.headers.get('accept')?.includes('application/json')) {
    return json({ greeting, name, path: req.path, config: Object.keys(config.all()).sort() });
  }
  return text(`${greeting}, ${name}!\n`);
});
