/**
 * One node:test suite every key-value backend must pass, so memory, Redis and later NATS KV
 * behave alike (Redis semantics). Optionally also drives the backend through
 * `KeyValueProvider.handle` with msgpack payloads shaped exactly as a waSCC actor sends them.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import { pino } from 'pino';
import { decode, encode } from '../../host/index.ts';
import type { LogStore, ProviderContext } from '../../host/index.ts';
import { isOperationError } from '../errors.ts';
import { KeyValueProvider } from './provider.ts';
import type { KeyValueStore } from './store.ts';

export interface ConformanceStore {
  store: KeyValueStore;
  cleanup(): Promise<void>;
}

export interface KeyValueConformanceOptions {
  /**
   * Link values that make a KeyValueProvider use this backend (e.g. `{URL: redis://…}`).
   * When given, the provider-level tests run too. A function, so it can read state set up in `before`.
   */
  linkValues?: () => Record<string, string>;
}

/** Asserts `promise` rejects with an OperationError of `code` whose message matches `pattern`. */
export async function rejectsWith(promise: Promise<unknown>, code: string, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(isOperationError(err), `expected an OperationError, got ${String(err)}`);
    assert.equal(err.code, code, `code of: ${err.message}`);
    assert.match(err.message, pattern);
    return true;
  });
}

const sorted = (values: string[]) => [...values].sort();

/** A context for starting a provider in tests: silent logger, no actors. */
export function testProviderContext(): ProviderContext {
  const logs: LogStore = {
    append() {},
    async *read() {},
    close() {},
  };
  return {
    hostId: 'NTESTHOST',
    logger: pino({ level: 'silent' }),
    logs,
    invokeActor: async () => {
      throw new Error('no actors in this test');
    },
  };
}

export function runKeyValueConformance(
  name: string,
  makeStore: () => Promise<ConformanceStore>,
  options: KeyValueConformanceOptions = {},
): void {
  /** Runs `fn` with a fresh store and a key prefix of its own, then cleans up. */
  const withStore = (fn: (store: KeyValueStore, k: (s: string) => string) => Promise<void>) => async () => {
    const { store, cleanup } = await makeStore();
    const prefix = `kvc:${randomUUID().slice(0, 8)}:`;
    try {
      await fn(store, (s) => prefix + s);
    } finally {
      await cleanup();
    }
  };

  describe(`key-value conformance: ${name}`, () => {
    test('Get/Set/Del on strings', withStore(async (s, k) => {
      assert.deepEqual(await s.get(k('a')), { value: '', exists: false });
      await s.set(k('a'), 'one', 0);
      assert.deepEqual(await s.get(k('a')), { value: 'one', exists: true });
      await s.set(k('a'), 'two', 0);
      assert.deepEqual(await s.get(k('a')), { value: 'two', exists: true });
      assert.equal(await s.del(k('a')), true);
      assert.deepEqual(await s.get(k('a')), { value: '', exists: false });
      assert.equal(await s.del(k('a')), false);
    }));

    test('empty values are values', withStore(async (s, k) => {
      await s.set(k('e'), '', 0);
      assert.deepEqual(await s.get(k('e')), { value: '', exists: true });
      assert.equal(await s.keyExists(k('e')), true);
      assert.equal(await s.push(k('l'), ''), 1);
      assert.deepEqual(await s.range(k('l'), 0, -1), ['']);
      assert.equal(await s.setAdd(k('s'), ''), 1);
      assert.deepEqual(await s.setQuery(k('s')), ['']);
    }));

    test('unicode keys and values round-trip', withStore(async (s, k) => {
      const key = k('ключ:🔑:日本語');
      const value = 'värde ✓ 🚀 𝄞 ﷽';
      await s.set(key, value, 0);
      assert.deepEqual(await s.get(key), { value, exists: true });
      assert.equal(await s.get(k('ключ:🔑:日本')).then((r) => r.exists), false, 'a prefix of the key is another key');
      assert.equal(await s.push(k('列表'), '一'), 1);
      assert.equal(await s.push(k('列表'), '二'), 2);
      assert.deepEqual(await s.range(k('列表'), 0, -1), ['一', '二']);
      await s.setAdd(k('集合'), 'α');
      await s.setAdd(k('集合'), 'β');
      assert.deepEqual(sorted(await s.setQuery(k('集合'))), ['α', 'β']);
    }));

    test('KeyExists sees every kind of key', withStore(async (s, k) => {
      assert.equal(await s.keyExists(k('x')), false);
      await s.set(k('str'), 'v', 0);
      await s.push(k('list'), 'v');
      await s.setAdd(k('set'), 'v');
      assert.equal(await s.keyExists(k('str')), true);
      assert.equal(await s.keyExists(k('list')), true);
      assert.equal(await s.keyExists(k('set')), true);
      assert.equal(await s.del(k('list')), true);
      assert.equal(await s.keyExists(k('list')), false);
      assert.equal(await s.del(k('set')), true);
      assert.equal(await s.keyExists(k('set')), false);
    }));

    test('Add increments, a missing key counting as 0', withStore(async (s, k) => {
      assert.equal(await s.add(k('n'), 5), 5);
      assert.equal(await s.add(k('n'), -7), -2);
      assert.deepEqual(await s.get(k('n')), { value: '-2', exists: true });
      await s.set(k('m'), '10', 0);
      assert.equal(await s.add(k('m'), 1), 11);
      assert.equal(await s.add(k('m'), 0), 11);
      assert.deepEqual(await s.get(k('m')), { value: '11', exists: true });
    }));

    test('Add on a non-integer value is an error and keeps the value', withStore(async (s, k) => {
      for (const bad of ['abc', '1.5', ' 1', '', '01', '+1']) {
        await s.set(k('bad'), bad, 0);
        await rejectsWith(s.add(k('bad'), 1), 'BAD_REQUEST', /not an integer/);
        assert.deepEqual(await s.get(k('bad')), { value: bad, exists: true }, `value ${JSON.stringify(bad)} kept`);
      }
    }));

    test('200 concurrent Adds lose nothing', withStore(async (s, k) => {
      const results = await Promise.all(Array.from({ length: 200 }, () => s.add(k('c'), 1)));
      assert.deepEqual([...results].sort((a, b) => a - b), Array.from({ length: 200 }, (_, i) => i + 1));
      assert.deepEqual(await s.get(k('c')), { value: '200', exists: true });
    }));

    test('Push and Range follow LRANGE (inclusive, negative indices)', withStore(async (s, k) => {
      const l = k('list');
      assert.deepEqual(await s.range(l, 0, -1), []);
      assert.equal(await s.push(l, 'a'), 1);
      assert.equal(await s.push(l, 'b'), 2);
      assert.equal(await s.push(l, 'c'), 3);
      assert.deepEqual(await s.range(l, 0, -1), ['a', 'b', 'c']);
      assert.deepEqual(await s.range(l, 1, 1), ['b']);
      assert.deepEqual(await s.range(l, 0, 0), ['a']);
      assert.deepEqual(await s.range(l, -2, -1), ['b', 'c']);
      assert.deepEqual(await s.range(l, -100, 100), ['a', 'b', 'c']);
      assert.deepEqual(await s.range(l, 1, 100), ['b', 'c']);
      assert.deepEqual(await s.range(l, 2, 1), []);
      assert.deepEqual(await s.range(l, 5, 10), []);
      assert.deepEqual(await s.range(l, -1, -2), []);
      assert.deepEqual(await s.range(l, -1, -1), ['c']);
    }));

    test('ListItemDelete removes every occurrence and returns the remaining length', withStore(async (s, k) => {
      const l = k('list');
      for (const v of ['a', 'b', 'a', 'c', 'a']) await s.push(l, v);
      assert.equal(await s.listItemDelete(l, 'a'), 2);
      assert.deepEqual(await s.range(l, 0, -1), ['b', 'c']);
      assert.equal(await s.listItemDelete(l, 'zzz'), 2);
      assert.equal(await s.listItemDelete(l, 'b'), 1);
      assert.equal(await s.listItemDelete(l, 'c'), 0);
      assert.equal(await s.keyExists(l), false, 'an emptied list is gone');
      assert.equal(await s.listItemDelete(k('missing'), 'a'), 0);
    }));

    test('Clear removes a list', withStore(async (s, k) => {
      const l = k('list');
      await s.push(l, 'a');
      await s.push(l, 'b');
      await s.clear(l);
      assert.deepEqual(await s.range(l, 0, -1), []);
      assert.equal(await s.keyExists(l), false);
      await s.clear(k('missing'));
      assert.equal(await s.push(l, 'c'), 1, 'a cleared list starts again empty');
    }));

    test('SetAdd/SetRemove count what changed; SetQuery lists members', withStore(async (s, k) => {
      const set = k('set');
      assert.deepEqual(await s.setQuery(set), []);
      assert.equal(await s.setAdd(set, 'x'), 1);
      assert.equal(await s.setAdd(set, 'x'), 0);
      assert.equal(await s.setAdd(set, 'y'), 1);
      assert.deepEqual(sorted(await s.setQuery(set)), ['x', 'y']);
      assert.equal(await s.setRemove(set, 'x'), 1);
      assert.equal(await s.setRemove(set, 'x'), 0);
      assert.equal(await s.setRemove(k('missing'), 'x'), 0);
      assert.deepEqual(await s.setQuery(set), ['y']);
      assert.equal(await s.setRemove(set, 'y'), 1);
      assert.equal(await s.keyExists(set), false, 'an emptied set is gone');
    }));

    test('SetUnion and SetIntersection treat missing keys as empty sets', withStore(async (s, k) => {
      for (const m of ['a', 'b', 'c']) await s.setAdd(k('s1'), m);
      for (const m of ['b', 'c', 'd']) await s.setAdd(k('s2'), m);
      assert.deepEqual(sorted(await s.setUnion([k('s1'), k('s2')])), ['a', 'b', 'c', 'd']);
      assert.deepEqual(sorted(await s.setUnion([k('s1'), k('none')])), ['a', 'b', 'c']);
      assert.deepEqual(await s.setUnion([k('none')]), []);
      assert.deepEqual(sorted(await s.setIntersection([k('s1'), k('s2')])), ['b', 'c']);
      assert.deepEqual(sorted(await s.setIntersection([k('s1')])), ['a', 'b', 'c']);
      assert.deepEqual(await s.setIntersection([k('s1'), k('none')]), []);
      await rejectsWith(s.setUnion([]), 'BAD_REQUEST', /at least one key/);
      await rejectsWith(s.setIntersection([]), 'BAD_REQUEST', /at least one key/);
    }));

    test('using a key of the wrong kind is an error that changes nothing', withStore(async (s, k) => {
      const str = k('str');
      const list = k('list');
      const set = k('set');
      await s.set(str, 'v', 0);
      await s.push(list, 'a');
      await s.setAdd(set, 'm');
      const wrong = /WRONGTYPE/;
      await rejectsWith(s.push(str, 'x'), 'BAD_REQUEST', wrong);
      await rejectsWith(s.range(str, 0, -1), 'BAD_REQUEST', wrong);
      await rejectsWith(s.listItemDelete(str, 'v'), 'BAD_REQUEST', wrong);
      await rejectsWith(s.setAdd(str, 'x'), 'BAD_REQUEST', wrong);
      await rejectsWith(s.setRemove(str, 'v'), 'BAD_REQUEST', wrong);
      await rejectsWith(s.setQuery(str), 'BAD_REQUEST', wrong);
      await rejectsWith(s.setUnion([set, str]), 'BAD_REQUEST', wrong);
      await rejectsWith(s.setIntersection([set, str]), 'BAD_REQUEST', wrong);
      await rejectsWith(s.get(list), 'BAD_REQUEST', wrong);
      await rejectsWith(s.add(list, 1), 'BAD_REQUEST', wrong);
      await rejectsWith(s.setAdd(list, 'x'), 'BAD_REQUEST', wrong);
      await rejectsWith(s.get(set), 'BAD_REQUEST', wrong);
      await rejectsWith(s.push(set, 'x'), 'BAD_REQUEST', wrong);
      await rejectsWith(s.range(set, 0, -1), 'BAD_REQUEST', wrong);
      // Nothing changed.
      assert.deepEqual(await s.get(str), { value: 'v', exists: true });
      assert.deepEqual(await s.range(list, 0, -1), ['a']);
      assert.deepEqual(await s.setQuery(set), ['m']);
      // Set replaces a key of any kind, as SET does.
      await s.set(list, 'now a string', 0);
      assert.deepEqual(await s.get(list), { value: 'now a string', exists: true });
    }));

    test('the error names the operation and the key', withStore(async (s, k) => {
      await s.set(k('named'), 'v', 0);
      await rejectsWith(s.push(k('named'), 'x'), 'BAD_REQUEST', new RegExp(`^Push "${k('named')}": WRONGTYPE`));
    }));

    test('expiry: keys with expires vanish; Set without expires clears it; Add keeps it', withStore(async (s, k) => {
      await s.set(k('gone'), 'v', 1);
      await s.set(k('kept'), 'v', 1);
      await s.set(k('kept'), 'w', 0);
      await s.set(k('counter'), '5', 1);
      assert.equal(await s.add(k('counter'), 1), 6);
      await s.set(k('relist'), 'v', 1);
      await s.set(k('later'), 'v', 60);
      assert.deepEqual(await s.get(k('gone')), { value: 'v', exists: true });
      await new Promise((r) => setTimeout(r, 1300));
      assert.deepEqual(await s.get(k('gone')), { value: '', exists: false });
      assert.equal(await s.keyExists(k('gone')), false);
      assert.deepEqual(await s.get(k('kept')), { value: 'w', exists: true });
      assert.equal(await s.keyExists(k('counter')), false);
      assert.equal(await s.add(k('counter'), 1), 1, 'an expired counter starts again from 0');
      assert.equal(await s.push(k('relist'), 'a'), 1, 'an expired string no longer blocks a list');
      assert.deepEqual(await s.get(k('later')), { value: 'v', exists: true });
    }));

    test('a closed store rejects calls', async () => {
      const { store, cleanup } = await makeStore();
      try {
        await store.close();
        await rejectsWith(store.get('x'), 'BACKEND_ERROR', /closed/);
        await rejectsWith(store.add('x', 1), 'BACKEND_ERROR', /closed/);
      } finally {
        await cleanup();
      }
    });

    if (options.linkValues) runProviderConformance(options.linkValues);
  });
}

/** rmp-serde `to_vec_named` of `AddRequest { key, value: i32 }`, byte for byte. */
function waSccAddPayload(key: string, value: number): Uint8Array {
  const keyBytes = Buffer.from(key, 'utf8');
  assert.ok(keyBytes.length < 32 && value >= 0 && value < 128, 'fixstr key and positive fixint only');
  return Uint8Array.from([
    0x82,
    0xa3, ...Buffer.from('key'),
    0xa0 | keyBytes.length, ...keyBytes,
    0xa5, ...Buffer.from('value'),
    value,
  ]);
}

function runProviderConformance(linkValues: () => Record<string, string>): void {
  const actor = 'MASCXFM4R6X63UD5MSCDZYCJNPBVSIU6RKMXUPXRKAOSBQ6UY3VT3NPZ';

  const withProvider = (fn: (call: (op: string, msg: Uint8Array) => Promise<unknown>, k: (s: string) => string) => Promise<void>) =>
    async () => {
      const provider = new KeyValueProvider();
      await provider.start(testProviderContext());
      try {
        await provider.putLink({ actor, contract: 'wascc:keyvalue', linkName: 'default', values: linkValues() });
        const prefix = `kvp:${randomUUID().slice(0, 8)}:`;
        // A waSCC actor names the default binding "".
        const call = async (operation: string, msg: Uint8Array) => decode(await provider.handle({ actor, linkName: '', operation, msg }));
        await fn(call, (s) => prefix + s);
      } finally {
        await provider.stop();
      }
    };

  test('provider: Add exactly as kvcounter sends it, with and without trailing bytes', withProvider(async (call, k) => {
    const key = k(':a:b');
    assert.deepEqual(await call('Add', waSccAddPayload(key, 1)), { value: 1 });
    const trailing = Uint8Array.from([...waSccAddPayload(key, 1), 0xc0, 0x01, 0xff]);
    assert.deepEqual(await call('Add', trailing), { value: 2 });
    assert.deepEqual(await call('Get', encode({ key })), { value: '2', exists: true });
  }));

  test('provider: every operation answers in wascc-codec shape', withProvider(async (call, k) => {
    assert.deepEqual(await call('Set', encode({ key: k('s'), value: 'v', expires: 0 })), { value: 'v' });
    assert.deepEqual(await call('Get', encode({ key: k('s') })), { value: 'v', exists: true });
    assert.deepEqual(await call('KeyExists', encode({ key: k('s') })), { value: '', exists: true });
    assert.deepEqual(await call('Del', encode({ key: k('s') })), { key: k('s') });
    assert.deepEqual(await call('Get', encode({ key: k('s') })), { value: '', exists: false });
    assert.deepEqual(await call('KeyExists', encode({ key: k('s') })), { value: '', exists: false });
    assert.deepEqual(await call('Add', encode({ key: k('n'), value: -3 })), { value: -3 });
    assert.deepEqual(await call('Push', encode({ key: k('l'), value: 'a' })), { newCount: 1 });
    assert.deepEqual(await call('Push', encode({ key: k('l'), value: 'b' })), { newCount: 2 });
    assert.deepEqual(await call('Push', encode({ key: k('l'), value: 'a' })), { newCount: 3 });
    assert.deepEqual(await call('Range', encode({ key: k('l'), start: 0, stop: -1 })), { values: ['a', 'b', 'a'] });
    assert.deepEqual(await call('ListItemDelete', encode({ key: k('l'), value: 'a' })), { newCount: 1 });
    assert.deepEqual(await call('Clear', encode({ key: k('l') })), { key: k('l') });
    assert.deepEqual(await call('Range', encode({ key: k('l'), start: 0, stop: -1 })), { values: [] });
    assert.deepEqual(await call('SetAdd', encode({ key: k('x'), value: 'm1' })), { newCount: 1 });
    assert.deepEqual(await call('SetAdd', encode({ key: k('x'), value: 'm1' })), { newCount: 0 });
    assert.deepEqual(await call('SetAdd', encode({ key: k('y'), value: 'm2' })), { newCount: 1 });
    assert.deepEqual(await call('SetAdd', encode({ key: k('y'), value: 'm1' })), { newCount: 1 });
    const union = (await call('SetUnion', encode({ keys: [k('x'), k('y')] }))) as { values: string[] };
    assert.deepEqual(Object.keys(union), ['values']);
    assert.deepEqual(sorted(union.values), ['m1', 'm2']);
    assert.deepEqual(await call('SetIntersection', encode({ keys: [k('x'), k('y')] })), { values: ['m1'] });
    assert.deepEqual(await call('SetRemove', encode({ key: k('y'), value: 'm1' })), { newCount: 1 });
    assert.deepEqual(await call('SetQuery', encode({ key: k('y') })), { values: ['m2'] });
  }));

  test('provider: Set with expires, positional payloads, and type errors', withProvider(async (call, k) => {
    assert.deepEqual(await call('Set', encode({ key: k('t'), value: 'v', expires: 1 })), { value: 'v' });
    // rmp-serde's compact struct form (a positional array) decodes too.
    assert.deepEqual(await call('Add', encode([k('p'), 4])), { value: 4 });
    assert.deepEqual(await call('Range', encode([k('none'), 0, -1])), { values: [] });
    await rejectsWith(call('Push', encode({ key: k('t'), value: 'x' })), 'BAD_REQUEST', /WRONGTYPE/);
    await new Promise((r) => setTimeout(r, 1300));
    assert.deepEqual(await call('Get', encode({ key: k('t') })), { value: '', exists: false });
  }));
}
