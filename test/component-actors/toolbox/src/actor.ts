/**
 * A component actor for host tests: one route per behaviour the tests check.
 */
import { ActorError, clock, config, extras, handler, httpClient, json, keyvalue, log, messaging, random, status, text, type HttpResponse, type KeyValue, type Message } from '../../../../actors-sdk/guest/index.ts';

/** Messages: counted in key-value (`msg:<subject>`); a request is answered `got <body>`; body `fail` fails. */
export function handleMessage(msg: Message): void {
  if (msg.text() === 'fail') throw new ActorError('message refused on purpose');
  keyvalue.add(`msg:${msg.subject}`, 1);
  if (msg.replyTo) messaging.publish(msg.replyTo, `got ${msg.text()}`);
}

let calls = 0;

type KvOp = keyof KeyValue;

function kv(body: { op: KvOp; args: unknown[]; link?: string }): HttpResponse {
  const store = body.link ? keyvalue.link(body.link) : keyvalue;
  const fn = store[body.op] as (...args: unknown[]) => unknown;
  if (typeof fn !== 'function') return status(400, `no key-value operation ${String(body.op)}`);
  return json(fn(...body.args) ?? null);
}

export default handler((req) => {
  calls++;
  switch (req.path) {
    case '/counter':
      return json({ calls });
    case '/echo':
      return json(
        { method: req.method, path: req.path, query: req.queryString, q: req.queryAll('q'), headers: req.headers.toJSON(), body: req.text() },
        { status: 201, headers: [['set-cookie', 'a=1'], ['set-cookie', 'b=2'], ['x-actor', 'toolbox']] },
      );
    case '/kv': {
      const body = req.json<{ op: KvOp; args: unknown[]; link?: string }>();
      if (!body.ok) return status(400, body.error);
      return kv(body.value);
    }
    case '/log': {
      const r = log.warn('something happened', { user: 'ada', attempt: 3, ok: false });
      console.log('console line', { n: calls });
      console.error('console error line');
      return json(r);
    }
    case '/config':
      return json({ all: config.all(), greeting: config.getOr('GREETING', 'none') });
    case '/time':
      return json({ now: Date.now(), clock: clock.nowMs(), mono: clock.monotonicMs(), random: Math.random(), bytes: Array.from(random.bytes(8)), uuid: random.uuid() });
    case '/publish':
      return json(messaging.publish(req.query('subject') ?? '', req.body, { replyTo: req.query('replyTo') ?? '' }));
    case '/request': {
      const r = messaging.request(req.query('subject') ?? '', req.body, { timeoutMs: Number(req.query('timeoutMs') ?? 1000) });
      return json(r.ok ? { ok: true, text: new TextDecoder().decode(r.value) } : r);
    }
    case '/fetch': {
      const r = httpClient.fetch(req.query('url') ?? '', { method: req.query('method') ?? 'GET', headers: { 'x-from': 'toolbox' }, body: req.body.byteLength ? req.body : undefined });
      return json(r.ok ? { ok: true, status: r.value.status, type: r.value.headers.get('content-type') ?? null, text: r.value.text() } : r);
    }
    case '/extras':
      return json({ guid: extras.guid(), random: extras.random(5, 10), sequence: extras.sequence(), bad: extras.random(3, 3) });
    case '/throw':
      throw new Error('kaboom');
    case '/fail':
      throw new ActorError('refused on purpose');
    case '/loop':
      for (;;) {
        // spins until the host stops it
      }
    case '/alloc': {
      // Allocates (and touches) ?mib=N MiB: the actor's memory limit decides whether it can.
      const mib = Number(new URLSearchParams(req.queryString).get('mib') ?? '1');
      const block = new Uint8Array(mib * 1024 * 1024).fill(1);
      return json({ bytes: block.length, sum: block[block.length - 1] });
    }
    case '/promise':
      return Promise.resolve(text('late')) as unknown as HttpResponse;
    default:
      return status(404, `no route ${req.path}`);
  }
});
