/**
 * A component actor for host tests: one route per behaviour the tests check.
 */
import { ActorError, clock, config, handler, json, keyvalue, log, random, status, text, type HttpResponse, type KeyValue } from '../../../../actors-sdk/guest/index.ts';

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
