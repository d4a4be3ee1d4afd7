/**
 * TypeScript component actors (built with the actors SDK) run by the Host next to waPC actors:
 * the same claims and link checks, deadlines, trap recovery and pool limits.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { HttpServerProvider, KeyValueProvider, LoggingProvider } from '../capabilities/index.ts';
import { decode, encode, Host, isActorLoadError, isClaimsError, isInvocationError, KEY_VALUE, signActor, wapcRuntime, type ActorRuntime, type CapabilityProvider, type ProviderCall } from '../host/index.ts';
import type { BuiltActor } from '../actors-sdk/index.ts';
import { buildTestActor, testComponentRuntime, toolboxProject } from './helpers/component-actors.ts';
import { compileWat, testAccount } from './helpers/wat.ts';
import { freePort } from './helpers/redis-server.ts';

const fixtures = new URL('../../shared/fixtures/', import.meta.url);
const echoBytes = readFileSync(new URL('wascc/echo.wasm', fixtures));
const logger = pino({ level: 'silent' });

interface Answer {
  statusCode: number;
  status: string;
  header: Record<string, string | string[]>;
  body: Uint8Array;
}

const request = (path: string, body: unknown = '', extra: { method?: string; queryString?: string; header?: Record<string, string> } = {}) =>
  encode({ method: extra.method ?? 'GET', path, queryString: extra.queryString ?? '', header: extra.header ?? {}, body: Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)) });

async function call(host: Host, actor: string, path: string, body: unknown = '', extra = {}): Promise<Answer> {
  return decode<Answer>(await host.invokeActor(actor, 'HandleRequest', request(path, body, extra)));
}

const bodyJson = (a: Answer) => JSON.parse(Buffer.from(a.body).toString('utf8'));

async function kv(host: Host, actor: string, op: string, ...args: unknown[]) {
  return bodyJson(await call(host, actor, '/kv', { op, args }));
}

/** Re-signs the same component under a new identity with other caps (no rebuild). */
function resign(built: BuiltActor, caps: string[], name = 'toolbox-variant') {
  const signed = signActor(built.bytes, { account: testAccount.seed, name, caps });
  return { bytes: signed.bytes, id: signed.claims.sub };
}

/** A key-value stand-in that holds every call `delayMs`, recording the peak concurrency. */
class SlowKeyValue implements CapabilityProvider {
  readonly contract = KEY_VALUE;
  readonly name = 'slow-kv';
  inFlight = 0;
  peak = 0;
  constructor(private readonly delayMs: number) {}
  async start() {}
  async stop() {}
  async putLink() {}
  async deleteLink() {}
  async handle(_call: ProviderCall): Promise<Uint8Array> {
    this.inFlight++;
    this.peak = Math.max(this.peak, this.inFlight);
    await new Promise((r) => setTimeout(r, this.delayMs));
    this.inFlight--;
    return encode({ value: 7 });
  }
}

describe('component actors in the host', () => {
  let toolbox: BuiltActor;
  let runtime: ReturnType<typeof testComponentRuntime>;
  let host: Host;

  before(async () => {
    toolbox = await buildTestActor(toolboxProject);
    runtime = testComponentRuntime();
    host = await Host.start({ workers: 2, deadlineMs: 3000 }, { logger, runtimes: [wapcRuntime, runtime] });
    await host.addProvider(new KeyValueProvider());
    await host.addProvider(new LoggingProvider());
  });
  after(async () => {
    await host?.stop();
  });

  it('answers HandleRequest through the typed HTTP handler: status, repeated headers, query, body', async () => {
    const info = await host.startActor(toolbox.bytes);
    assert.equal(info.kind, 'component');
    assert.equal(info.id, toolbox.subject);
    assert.equal(info.name, 'toolbox');
    const out = await call(host, info.id, '/echo', 'hello body', { method: 'POST', queryString: 'q=1&q=two%20words', header: { 'X-Mixed-Case': 'v' } });
    assert.equal(out.statusCode, 201);
    assert.equal(out.status, 'Created');
    assert.deepEqual(out.header['set-cookie'], ['a=1', 'b=2']);
    assert.equal(out.header['x-actor'], 'toolbox');
    assert.deepEqual(bodyJson(out), { method: 'POST', path: '/echo', query: 'q=1&q=two%20words', q: ['1', 'two words'], headers: { 'x-mixed-case': 'v' }, body: 'hello body' });
    const missing = await call(host, info.id, '/nowhere');
    assert.equal(missing.statusCode, 404);
    assert.match(Buffer.from(missing.body).toString(), /no route \/nowhere/);
    // A payload that is not a HandleRequest map is the guest's error, not a trap.
    await assert.rejects(host.invokeActor(info.id, 'HandleRequest', new Uint8Array([0x92, 1, 2])), (e) => isInvocationError(e) && e.code === 'GUEST_ERROR' && /not a map/.test(e.message));
    await assert.rejects(host.invokeActor(info.id, 'SomethingElse', request('/')), (e) => isInvocationError(e) && e.code === 'GUEST_ERROR' && /no handler for operation SomethingElse/.test(e.message));
    await host.stopActor(info.id);
  });

  it('serves every key-value operation through the same provider, with errors as values', async () => {
    const info = await host.startActor(toolbox.bytes);
    try {
      const notLinked = await kv(host, info.id, 'get', 'k');
      assert.equal(notLinked.ok, false);
      assert.equal(notLinked.error.code, 'not-linked');
      await host.putLink({ actor: info.id, contract: 'wasmlet:keyvalue', values: { BUCKET: 'component-kv' } });

      assert.deepEqual(await kv(host, info.id, 'get', 'missing'), { ok: true });
      assert.deepEqual(await kv(host, info.id, 'set', 's', 'v1', { expiresSeconds: 0 }), { ok: true });
      assert.deepEqual(await kv(host, info.id, 'get', 's'), { ok: true, value: 'v1' });
      assert.deepEqual(await kv(host, info.id, 'add', 'n', 5), { ok: true, value: 5 });
      assert.deepEqual(await kv(host, info.id, 'add', 'n', -2), { ok: true, value: 3 });
      assert.deepEqual(await kv(host, info.id, 'add', 'n'), { ok: true, value: 4 }, 'delta defaults to 1');
      assert.deepEqual(await kv(host, info.id, 'push', 'l', 'a'), { ok: true, value: 1 });
      assert.deepEqual(await kv(host, info.id, 'push', 'l', 'b'), { ok: true, value: 2 });
      assert.deepEqual(await kv(host, info.id, 'push', 'l', 'a'), { ok: true, value: 3 });
      assert.deepEqual(await kv(host, info.id, 'range', 'l', 0, -1), { ok: true, value: ['a', 'b', 'a'] });
      assert.deepEqual(await kv(host, info.id, 'listItemDelete', 'l', 'a'), { ok: true, value: 1 });
      assert.deepEqual(await kv(host, info.id, 'clear', 'l'), { ok: true });
      assert.deepEqual(await kv(host, info.id, 'keyExists', 'l'), { ok: true, value: false });
      assert.deepEqual(await kv(host, info.id, 'setAdd', 'x', 'm1'), { ok: true, value: 1 });
      assert.deepEqual(await kv(host, info.id, 'setAdd', 'x', 'm1'), { ok: true, value: 0 });
      assert.deepEqual(await kv(host, info.id, 'setAdd', 'x', 'm2'), { ok: true, value: 1 });
      assert.deepEqual(await kv(host, info.id, 'setAdd', 'y', 'm2'), { ok: true, value: 1 });
      assert.deepEqual((await kv(host, info.id, 'setQuery', 'x')).value.sort(), ['m1', 'm2']);
      assert.deepEqual((await kv(host, info.id, 'setUnion', ['x', 'y'])).value.sort(), ['m1', 'm2']);
      assert.deepEqual(await kv(host, info.id, 'setIntersection', ['x', 'y']), { ok: true, value: ['m2'] });
      assert.deepEqual(await kv(host, info.id, 'setRemove', 'x', 'm1'), { ok: true, value: 1 });
      assert.deepEqual(await kv(host, info.id, 'keyExists', 'x'), { ok: true, value: true });
      assert.deepEqual(await kv(host, info.id, 'del', 'x'), { ok: true });
      assert.deepEqual(await kv(host, info.id, 'keyExists', 'x'), { ok: true, value: false });

      // Misuse comes back as a value, and the actor keeps serving.
      const wrongKind = await kv(host, info.id, 'push', 's', 'x');
      assert.equal(wrongKind.ok, false);
      assert.equal(wrongKind.error.code, 'bad-request');
      assert.match(wrongKind.error.message, /WRONGTYPE/);
      const badDelta = await kv(host, info.id, 'add', 'n', 1.5);
      assert.deepEqual(badDelta.error.code, 'bad-request');
      assert.match(badDelta.error.message, /delta must be an integer/);
      assert.deepEqual(await kv(host, info.id, 'get', 's'), { ok: true, value: 'v1' }, 'nothing was lost');

      // Named links are separate links.
      const other = bodyJson(await call(host, info.id, '/kv', { op: 'get', args: ['s'], link: 'cache' }));
      assert.equal(other.error.code, 'not-linked');
      assert.match(other.error.message, /link name cache/);
    } finally {
      await host.stopActor(info.id);
    }
  });

  it('checks claims at call time: an unclaimed contract is an error value, never a provider call', async () => {
    const variant = resign(toolbox, ['wasmlet:httpserver'], 'toolbox-http-only');
    await host.startActor(variant.bytes);
    try {
      await assert.rejects(host.putLink({ actor: variant.id, contract: 'wasmlet:keyvalue', values: {} }), /does not claim/);
      const out = await kv(host, variant.id, 'add', 'n', 1);
      assert.equal(out.ok, false);
      assert.equal(out.error.code, 'not-claimed');
    } finally {
      await host.stopActor(variant.id);
    }
  });

  it('logs through the logging capability (with context) and keeps console lines per actor', async () => {
    const info = await host.startActor(toolbox.bytes);
    try {
      const denied = bodyJson(await call(host, info.id, '/log'));
      assert.equal(denied.error.code, 'not-linked');
      await host.putLink({ actor: info.id, contract: 'wasmlet:logging' });
      assert.deepEqual(bodyJson(await call(host, info.id, '/log')), { ok: true });
      const lines = [];
      for await (const r of host.logs.read(info.id)) lines.push(r);
      const logged = lines.find((l) => l.stream === 'log');
      assert.ok(logged, 'a logging-capability line');
      assert.equal(logged.level, 'warn');
      assert.equal(logged.msg, 'something happened user=ada attempt=3 ok=false');
      assert.ok(lines.some((l) => l.stream === 'console' && l.level === 'info' && /^console line \{"n":\d+\}$/.test(l.msg)), 'console.log line');
      assert.ok(lines.some((l) => l.stream === 'console' && l.level === 'error' && l.msg === 'console error line'), 'console.error line');
    } finally {
      await host.stopActor(info.id);
    }
  });

  it('reads a live clock and fresh randomness, not values frozen at build time', async () => {
    const info = await host.startActor(toolbox.bytes);
    try {
      const a = bodyJson(await call(host, info.id, '/time'));
      await new Promise((r) => setTimeout(r, 30));
      const b = bodyJson(await call(host, info.id, '/time'));
      assert.ok(Math.abs(a.now - Date.now()) < 5000, `Date.now() is the host's time (${a.now})`);
      assert.ok(b.now - a.now >= 25, `time moved between calls (${b.now - a.now} ms)`);
      // The monotonic clock counts from the instance's start; the two calls may reach different
      // instances (a worker is replaced after it discarded enough memory), so it is compared
      // for being live, not for the time between the calls.
      assert.notEqual(a.mono, b.mono, 'the monotonic clock moved');
      assert.notEqual(a.random, b.random);
      assert.notDeepEqual(a.bytes, b.bytes);
      assert.notEqual(a.uuid, b.uuid);
      assert.match(a.uuid, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    } finally {
      await host.stopActor(info.id);
    }
  });

  it('keeps the instance after an ActorError answer, discards it after an exception, and answers the next call', async () => {
    const info = await host.startActor(toolbox.bytes, { maxInstances: 1 });
    try {
      await call(host, info.id, '/counter');
      const before = bodyJson(await call(host, info.id, '/counter')).calls;
      await assert.rejects(host.invokeActor(info.id, 'HandleRequest', request('/fail')), (e) => isInvocationError(e) && e.code === 'GUEST_ERROR' && e.message === 'refused on purpose');
      assert.equal(bodyJson(await call(host, info.id, '/counter')).calls, before + 2, 'state kept: same instance');
      await assert.rejects(host.invokeActor(info.id, 'HandleRequest', request('/throw')), (e) => isInvocationError(e) && e.code === 'TRAP' && /kaboom/.test(e.message));
      assert.equal(bodyJson(await call(host, info.id, '/counter')).calls, 1, 'a fresh instance after the exception');
      await assert.rejects(host.invokeActor(info.id, 'HandleRequest', request('/promise')), (e) => isInvocationError(e) && e.code === 'TRAP' && /returned a Promise/.test(e.message));
      assert.equal((await call(host, info.id, '/counter')).statusCode, 200);
      assert.equal(host.workerRestarts, 0, 'exceptions cost an instance, not a worker');
    } finally {
      await host.stopActor(info.id);
    }
  });

  it('answers 500 over HTTP when the actor throws, and 200 on the next request', async () => {
    const h = await Host.start({ workers: 2 }, { logger, runtimes: [wapcRuntime, runtime] });
    try {
      await h.addProvider(new HttpServerProvider());
      const info = await h.startActor(toolbox.bytes, { maxInstances: 1 });
      const port = await freePort();
      await h.putLink({ actor: info.id, contract: 'wasmlet:httpserver', values: { PORT: String(port), ADDRESS: '127.0.0.1' } });
      const thrown = await fetch(`http://127.0.0.1:${port}/throw`);
      assert.equal(thrown.status, 500);
      await thrown.arrayBuffer();
      const next = await fetch(`http://127.0.0.1:${port}/counter`);
      assert.equal(next.status, 200);
      assert.deepEqual(await next.json(), { calls: 1 });
    } finally {
      await h.stop();
    }
  });

  it('stops a looping component at its deadline while a waPC actor keeps serving', async () => {
    const h = await Host.start({ workers: 2, deadlineMs: 1500 }, { logger, runtimes: [wapcRuntime, runtime] });
    try {
      const info = await h.startActor(toolbox.bytes, { maxInstances: 1 });
      const echo = await h.startActor(echoBytes, { maxInstances: 1 });
      assert.equal((await call(h, info.id, '/counter')).statusCode, 200, 'warm');
      const started = Date.now();
      const looping = h.invokeActor(info.id, 'HandleRequest', request('/loop'));
      let answered = 0;
      while (Date.now() - started < 1200) {
        const out = await call(h, echo.id, '/meanwhile');
        assert.equal(out.statusCode, 200);
        answered++;
      }
      assert.ok(answered >= 10, `echo answered ${answered} times while the loop ran`);
      await assert.rejects(looping, (e) => isInvocationError(e) && e.code === 'DEADLINE_EXCEEDED');
      const elapsed = Date.now() - started;
      assert.ok(elapsed >= 1500 && elapsed < 4000, `stopped near its deadline (${elapsed} ms)`);
      assert.equal(h.workerRestarts, 1);
      // Its next call waits for the worker its overrun cost (charged to its share until that
      // worker has started), so it gets a deadline that allows for a slow start on a busy machine.
      const again = decode<Answer>(await h.invokeActor(info.id, 'HandleRequest', request('/counter'), { deadlineMs: 15_000 }));
      assert.deepEqual(bodyJson(again), { calls: 1 }, 'served again by a fresh worker and instance');
    } finally {
      await h.stop();
    }
  });

  it('keeps to maxInstances: concurrent calls share a bounded set of instances', async () => {
    const slow = new SlowKeyValue(40);
    const h = await Host.start({ workers: 3 }, { logger, runtimes: [wapcRuntime, runtime] });
    try {
      await h.addProvider(slow);
      const info = await h.startActor(toolbox.bytes, { maxInstances: 2 });
      await h.putLink({ actor: info.id, contract: KEY_VALUE });
      const results = await Promise.all(Array.from({ length: 8 }, () => kv(h, info.id, 'add', 'k', 1)));
      assert.deepEqual(results, Array.from({ length: 8 }, () => ({ ok: true, value: 7 })));
      assert.equal(slow.peak, 2, 'exactly maxInstances calls ran at once');
      assert.equal(h.actor(info.id)!.instances, 2);
    } finally {
      await h.stop();
    }
  });

  it('refuses a tampered component, an unsigned one, and a component that is not an actor', async () => {
    const tampered = Uint8Array.from(toolbox.bytes);
    tampered[Math.floor(tampered.length / 2)]! ^= 0xff;
    await assert.rejects(host.startActor(tampered), (e) => isClaimsError(e) && e.code === 'CLAIMS_HASH' && /changed after signing/.test(e.message));
    const { stripCustomSections } = await import('../host/index.ts');
    await assert.rejects(host.startActor(stripCustomSections(toolbox.bytes, ['jwt'])), (e) => isClaimsError(e) && e.code === 'CLAIMS_MISSING');
    const { parse } = await import('@bytecodealliance/jco');
    const empty = await parse('(component)');
    const signedEmpty = signActor(empty, { account: testAccount.seed, name: 'empty', caps: [] });
    await assert.rejects(host.startActor(signedEmpty.bytes), (e) => isActorLoadError(e) && /must export wasmlet:actor\/http-handler@0\.1\.0/.test(e.message));
    assert.equal(host.actors().length, 0, 'nothing was started');
    // A core module that is not waPC is still refused as before.
    await assert.rejects(host.startActor(signActor(await compileWat('(module)'), { account: testAccount.seed, name: 'core', caps: [] }).bytes), /unrecognised actor format/);
  });

  it('transpiles once per digest: later starts and other runtimes on the same cache reuse it', async () => {
    const own = testComponentRuntime();
    const h = await Host.start({ workers: 1 }, { logger, runtimes: [wapcRuntime, own] });
    try {
      const info = await h.startActor(toolbox.bytes);
      await h.stopActor(info.id);
      await h.startActor(toolbox.bytes);
      const variant = resign(toolbox, ['wasmlet:httpserver'], 'same-code-other-identity');
      await h.startActor(variant.bytes);
      assert.deepEqual(own.stats(), { transpiled: 1, compiled: 1 }, 'one transpile, one compile for one component digest');
      assert.equal((await call(h, variant.id, '/counter')).statusCode, 200);
    } finally {
      await h.stop();
    }
    // A new runtime (a restarted host) finds the transpiled files on disk.
    const { createComponentRuntime, GLUE_FORMAT, JCO_VERSION } = await import('../host/runtime/component.ts');
    const again = createComponentRuntime({ cacheDir: own.cacheDir });
    const prepared = await again.prepare(toolbox.bytes, undefined);
    assert.equal(prepared.kind, 'component');
    assert.deepEqual(again.stats(), { transpiled: 0, compiled: 1 });
    // One folder, named for the jco version and glue format, so another jco's output is never reused.
    const folders = readdirSync(own.cacheDir);
    assert.equal(folders.length, 1);
    assert.ok(folders[0]!.endsWith(`-jco${JCO_VERSION}-${GLUE_FORMAT}`), folders[0]);
    const meta = JSON.parse(readFileSync(join(own.cacheDir, folders[0]!, 'meta.json'), 'utf8'));
    assert.equal(meta.format, GLUE_FORMAT);
    // The stored glue lost jco's per-call scaffolding (debug logs, task records); if a jco upgrade
    // changes the glue's shape, the rewrites in component-glue.ts need a look.
    const glue = readFileSync(join(own.cacheDir, folders[0]!, meta.glue), 'utf8');
    assert.doesNotMatch(glue, /(?<!const )_debugLog\(/, 'no debug-log call sites are left');
    assert.doesNotMatch(glue, /= startCurrentTask\(|\bendCurrentTask\(\d/, 'no per-call task records are left');
    // jco was given stubs of the large core modules; what is cached is the component's own modules.
    const { parseWasmLayout } = await import('../host/claims/wasm-sections.ts');
    const embedded = parseWasmLayout(toolbox.bytes).sections.filter((s) => s.id === 1).map((s) => Buffer.from(toolbox.bytes.subarray(s.payloadStart, s.end)));
    const cached = (meta.coreModules as string[]).map((f) => readFileSync(join(own.cacheDir, folders[0]!, f)));
    assert.ok(embedded.some((m) => m.length > 1_000_000), 'the component has a large core module');
    assert.deepEqual(cached.map((c) => c.length).sort(), embedded.map((m) => m.length).sort());
    for (const c of cached) assert.ok(embedded.some((m) => m.equals(c)), 'every cached core module is one of the component\'s own');
    // A cache written under an older name (another jco version) is ignored, not reused.
    const other = createComponentRuntime({ cacheDir: own.cacheDir });
    const { renameSync } = await import('node:fs');
    renameSync(join(own.cacheDir, folders[0]!), join(own.cacheDir, folders[0]!.replace(`-jco${JCO_VERSION}-${GLUE_FORMAT}`, '-jco0.0.0')));
    await other.prepare(toolbox.bytes, undefined);
    assert.deepEqual(other.stats(), { transpiled: 1, compiled: 1 });
  });

  it('hands the actor its config values', async () => {
    const config = { GREETING: 'bonjour', MODE: 'test' };
    // Until the host passes start-time config to workers, the payload carries it.
    const withConfig: ActorRuntime = {
      kind: 'component',
      detect: (b, m) => runtime.detect(b, m),
      prepare: async (b, m) => {
        const p = await runtime.prepare(b, m);
        return { ...p, payload: { ...(p.payload as object), config } };
      },
    };
    const h = await Host.start({ workers: 1 }, { logger, runtimes: [wapcRuntime, withConfig] });
    try {
      const info = await h.startActor(toolbox.bytes, { config });
      assert.deepEqual(bodyJson(await call(h, info.id, '/config')), { all: config, greeting: 'bonjour' });
    } finally {
      await h.stop();
    }
  });
});
