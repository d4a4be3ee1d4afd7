import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decode, encode } from '../codec.ts';
import { classifyHostError, ImportFailure, renderLogLine, worldImports, type WitError } from './component-world.ts';
import type { GuestEnv, HostCallResult } from './runtime.ts';

type Fn = (...args: unknown[]) => unknown;
type WitResult = { tag: 'ok'; val: unknown } | { tag: 'err'; val: WitError };

/** What jco's glue makes of an import call: the value returned is ok; a thrown `payload` is err; anything else escapes. */
function settle(fn: () => unknown): WitResult {
  try {
    return { tag: 'ok', val: fn() };
  } catch (e) {
    if (e !== null && typeof e === 'object' && Object.hasOwn(e, 'payload') && !(e instanceof Error)) return { tag: 'err', val: (e as { payload: WitError }).payload };
    throw e;
  }
}

function fakeEnv(answer: (ns: string, op: string, payload: unknown) => HostCallResult) {
  const calls: Array<{ binding: string; ns: string; op: string; payload: unknown; owned: boolean }> = [];
  const logs: Array<[string, string]> = [];
  const env: GuestEnv = {
    actor: 'MTEST',
    limits: { hostCallBytes: 1 << 20, responseBytes: 1 << 20 },
    hostCall(binding, ns, op, payload) {
      const decoded = decode(payload);
      // A view into a larger buffer would be copied whole when the worker posts it to the host.
      const owned = payload.byteOffset === 0 && payload.buffer.byteLength === payload.byteLength;
      calls.push({ binding, ns, op, payload: decoded, owned });
      return answer(ns, op, decoded);
    },
    log: (level, message) => void logs.push([level, message]),
  };
  return { env, calls, logs };
}

describe('component world imports', () => {
  it('maps every key-value import onto the waSCC operation and payload', () => {
    const { env, calls } = fakeEnv((_ns, op) => {
      const replies: Record<string, unknown> = {
        Get: { value: 'v', exists: true },
        Add: { value: 6 },
        Range: { values: ['a'] },
        Push: { newCount: 2 },
        ListItemDelete: { newCount: 1 },
        SetAdd: { newCount: 1 },
        SetRemove: { newCount: 0 },
        SetUnion: { values: ['x', 'y'] },
        SetIntersection: { values: [] },
        SetQuery: { values: ['x'] },
        KeyExists: { value: '', exists: true },
      };
      return { ok: encode(replies[op] ?? { key: 'k' }) };
    });
    const kv = worldImports(env, {})['wasmlet:actor/keyvalue'] as Record<string, Fn>;
    const results = [
      settle(() => kv.get!('', 'k')),
      settle(() => kv.set!('', 'k', 'v', 10)),
      settle(() => kv.del!('', 'k')),
      settle(() => kv.add!('cache', 'n', 5)),
      settle(() => kv.clear!('', 'l')),
      settle(() => kv.range!('', 'l', 0, -1)),
      settle(() => kv.push!('', 'l', 'a')),
      settle(() => kv.listItemDelete!('', 'l', 'a')),
      settle(() => kv.setAdd!('', 's', 'x')),
      settle(() => kv.setRemove!('', 's', 'x')),
      settle(() => kv.setUnion!('', ['s', 't'])),
      settle(() => kv.setIntersection!('', ['s', 't'])),
      settle(() => kv.setQuery!('', 's')),
      settle(() => kv.keyExists!('', 'k')),
    ];
    assert.deepEqual(
      calls.map((c) => [c.binding, c.ns, c.op, c.payload]),
      [
        ['', 'wasmlet:keyvalue', 'Get', { key: 'k' }],
        ['', 'wasmlet:keyvalue', 'Set', { key: 'k', value: 'v', expires: 10 }],
        ['', 'wasmlet:keyvalue', 'Del', { key: 'k' }],
        ['cache', 'wasmlet:keyvalue', 'Add', { key: 'n', value: 5 }],
        ['', 'wasmlet:keyvalue', 'Clear', { key: 'l' }],
        ['', 'wasmlet:keyvalue', 'Range', { key: 'l', start: 0, stop: -1 }],
        ['', 'wasmlet:keyvalue', 'Push', { key: 'l', value: 'a' }],
        ['', 'wasmlet:keyvalue', 'ListItemDelete', { key: 'l', value: 'a' }],
        ['', 'wasmlet:keyvalue', 'SetAdd', { key: 's', value: 'x' }],
        ['', 'wasmlet:keyvalue', 'SetRemove', { key: 's', value: 'x' }],
        ['', 'wasmlet:keyvalue', 'SetUnion', { keys: ['s', 't'] }],
        ['', 'wasmlet:keyvalue', 'SetIntersection', { keys: ['s', 't'] }],
        ['', 'wasmlet:keyvalue', 'SetQuery', { key: 's' }],
        ['', 'wasmlet:keyvalue', 'KeyExists', { key: 'k' }],
      ],
    );
    assert.deepEqual(
      results.map((r) => (r as { val: unknown }).val),
      ['v', undefined, undefined, 6, undefined, ['a'], 2, 1, 1, 0, ['x', 'y'], [], ['x'], true],
    );
    assert.ok(results.every((r) => (r as { tag: string }).tag === 'ok'));
    assert.ok(calls.every((c) => c.owned), 'every payload owns its exact-size buffer');
  });

  it('answers a missing key with none', () => {
    const { env } = fakeEnv(() => ({ ok: encode({ value: '', exists: false }) }));
    const kv = worldImports(env, {})['wasmlet:actor/keyvalue'] as Record<string, Fn>;
    assert.deepEqual(settle(() => kv.get!('', 'nope')), { tag: 'ok', val: undefined });
  });

  it('fails only with an error payload: host errors, throwing host calls and bad replies come back as error values', () => {
    let mode = 'error';
    const { env } = fakeEnv(() => {
      if (mode === 'throw') throw new Error('worker state broken');
      if (mode === 'garbage') return { ok: new Uint8Array([0xc1]) };
      if (mode === 'shape') return { ok: encode({ value: 'not a number' }) };
      return { error: 'actor MX has no link to wasmlet:keyvalue (link name default)' };
    });
    const kv = worldImports(env, {})['wasmlet:actor/keyvalue'] as Record<string, Fn>;
    assert.deepEqual(settle(() => kv.add!('', 'k', 1)), { tag: 'err', val: { code: 'not-linked', message: 'actor MX has no link to wasmlet:keyvalue (link name default)' } });
    // What is thrown is never an Error (jco's glue would rethrow that into the engine) and carries no stack.
    assert.throws(() => kv.add!('', 'k', 1), (e) => e instanceof ImportFailure && !(e instanceof Error));
    mode = 'throw';
    assert.deepEqual(settle(() => kv.add!('', 'k', 1)), { tag: 'err', val: { code: 'failed', message: 'Add: worker state broken' } });
    mode = 'garbage';
    const g = settle(() => kv.add!('', 'k', 1)) as { tag: string; val: { message: string } };
    assert.equal(g.tag, 'err');
    assert.match(g.val.message, /not msgpack/);
    mode = 'shape';
    const s = settle(() => kv.add!('', 'k', 1)) as { tag: string; val: { message: string } };
    assert.equal(s.tag, 'err');
    assert.match(s.val.message, /"value" is not an integer/);
  });

  it('sends WriteLog with the waSCC level number, a logfmt body and the context map', () => {
    const { env, calls } = fakeEnv(() => ({ ok: encode({}) }));
    const logging = worldImports(env, {})['wasmlet:actor/logging'] as Record<string, Fn>;
    assert.deepEqual(settle(() => logging.writeLog!('', 'warn', 'disk low', [['free', '2 GB'], ['path', '/data']])), { tag: 'ok', val: undefined });
    assert.deepEqual(calls[0], {
      owned: true,
      binding: '',
      ns: 'wasmlet:logging',
      op: 'WriteLog',
      payload: { level: 2, body: 'disk low free="2 GB" path=/data', context: { free: '2 GB', path: '/data' } },
    });
  });

  it('writes console lines locally and serves config without host calls', () => {
    const { env, calls, logs } = fakeEnv(() => ({ error: 'unexpected' }));
    const imports = worldImports(env, { GREETING: 'hi', toString: 'own' });
    (imports['wasmlet:actor/console']!.write as Fn)('debug', 'dbg line');
    const config = imports['wasmlet:actor/config'] as Record<string, Fn>;
    assert.equal(config.get!('GREETING'), 'hi');
    assert.equal(config.get!('toString'), 'own');
    assert.equal(config.get!('constructor'), undefined, 'inherited names are not config');
    assert.deepEqual(config.getAll!(), [['GREETING', 'hi'], ['toString', 'own']]);
    assert.deepEqual(logs, [['debug', 'dbg line']]);
    assert.equal(calls.length, 0);
  });

  it('classifies host and provider errors', () => {
    assert.equal(classifyHostError('host call timed out: invocation deadline exceeded'), 'timeout');
    assert.equal(classifyHostError('actor M is not allowed to call wasmlet:keyvalue: its claims do not include it'), 'not-claimed');
    assert.equal(classifyHostError('actor M has no key-value link named "x"'), 'not-linked');
    assert.equal(classifyHostError('Push "k": WRONGTYPE Operation against a key holding the wrong kind of value'), 'bad-request');
    assert.equal(classifyHostError('nothing serves wasmlet.default.rpc.x'), 'unavailable');
    assert.equal(classifyHostError('something odd'), 'failed');
  });

  it('renders log lines with quoted values only where needed', () => {
    assert.equal(renderLogLine('m', []), 'm');
    assert.equal(renderLogLine('m', [['a', 'b'], ['q', 'has space'], ['e', ''], ['eq', 'a=b']]), 'm a=b q="has space" e="" eq="a=b"');
  });
});
