/**
 * messaging-publisher: publishes the path of each HTTP request to the subject `demo.requests`
 * and answers 202 `{"published": path}`. A failed publish is the actor's error (HTTP 500).
 */
import { ActorError, handler, json, messaging } from '../../../../actors-sdk/guest/index.ts';

export const SUBJECT = 'demo.requests';

export default handler((req) => {
  const sent = messaging.publish(SUBJECT, req.path);
  if (!sent.ok) throw new ActorError(`cannot publish ${req.path}: ${sent.error.message}`);
  return json({ published: req.path }, { status: 202 });
});
