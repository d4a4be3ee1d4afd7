import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isApiError } from './api-error.ts';
import { Store } from './store.ts';
import type { KubeObject, StoreEvent } from './types.ts';

const cm = (name: string, data: Record<string, string> = {}): KubeObject => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: 'ns' }, data });

describe('Store', () => {
  it('stamps every write with the next global resource version and notifies subscribers', () => {
    const store = new Store({ historySize: 100 });
    const seen: StoreEvent[] = [];
    store.subscribe((e) => seen.push(e));
    const a = store.insert('configmaps', cm('a'));
    const b = store.insert('configmaps', cm('b'));
    const a2 = store.replace('configmaps', { ...a, data: { k: 'v' } });
    const gone = store.remove('configmaps', 'ns', 'b');
    assert.deepEqual([a, b, a2, gone].map((o) => o!.metadata.resourceVersion), ['1', '2', '3', '4']);
    assert.deepEqual(seen.map((e) => `${e.type}:${e.object.metadata.name}@${e.rv}`), ['ADDED:a@1', 'ADDED:b@2', 'MODIFIED:a@3', 'DELETED:b@4']);
    assert.equal(seen[2]!.previous!.metadata.resourceVersion, '1');
    assert.equal(store.resourceVersion, 4);
    assert.equal(b.metadata.resourceVersion, '2', 'returned copies are not changed by later writes');
  });

  it('hands out copies: changing a returned object does not change the store', () => {
    const store = new Store({ historySize: 10 });
    store.insert('configmaps', cm('a', { k: 'v' }));
    const got = store.get('configmaps', 'ns', 'a')!;
    (got.data as Record<string, string>).k = 'changed';
    assert.equal((store.get('configmaps', 'ns', 'a')!.data as Record<string, string>).k, 'v');
  });

  it('replays changes after a resource version and answers 410 once they left the window', () => {
    const store = new Store({ historySize: 3 });
    for (const n of ['a', 'b', 'c', 'd', 'e']) store.insert('configmaps', cm(n));
    assert.deepEqual(store.eventsSince(3).map((e) => e.rv), [4, 5]);
    assert.deepEqual(store.eventsSince(2).map((e) => e.rv), [3, 4, 5]);
    assert.throws(() => store.eventsSince(1), (e) => isApiError(e) && e.code === 410 && e.reason === 'Expired');
    assert.equal(store.oldestResourceVersion, 2);
  });

  it('rebuilds a resource as it was at an earlier resource version', () => {
    const store = new Store({ historySize: 100 });
    const a = store.insert('configmaps', cm('a', { v: '1' })); // 1
    store.insert('configmaps', cm('b')); // 2
    store.insert('pods', { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'ns' } }); // 3
    store.replace('configmaps', { ...a, data: { v: '2' } }); // 4
    store.remove('configmaps', 'ns', 'b'); // 5
    store.insert('configmaps', cm('c')); // 6
    const at2 = store.scanAt('configmaps', 2);
    assert.deepEqual(at2.map((o) => [o.metadata.name, (o.data as Record<string, string>).v ?? '']), [['a', '1'], ['b', '']]);
    assert.deepEqual(store.scanAt('configmaps', 4).map((o) => o.metadata.name), ['a', 'b']);
    assert.deepEqual(store.scanAt('configmaps', 6).map((o) => o.metadata.name), ['a', 'c']);
    assert.deepEqual(store.scanAt('configmaps', 0).map((o) => o.metadata.name), []);
  });

  it('compact() makes every earlier resource version too old', () => {
    const store = new Store({ historySize: 100 });
    store.insert('configmaps', cm('a'));
    const rv = store.resourceVersion;
    assert.deepEqual(store.eventsSince(rv), []);
    store.compact();
    assert.throws(() => store.eventsSince(rv), (e) => isApiError(e) && e.code === 410);
    assert.throws(() => store.scanAt('configmaps', rv), (e) => isApiError(e) && e.code === 410);
    assert.deepEqual(store.eventsSince(store.resourceVersion), []);
    assert.equal(store.get('configmaps', 'ns', 'a')!.metadata.name, 'a', 'objects survive compaction');
  });

  it('lists in key order (namespace, then name)', () => {
    const store = new Store({ historySize: 10 });
    for (const [ns, n] of [['b', 'x'], ['a', 'z'], ['a', 'y']] as const) store.insert('configmaps', { ...cm(n), metadata: { name: n, namespace: ns } });
    assert.deepEqual(store.scan('configmaps').map((o) => `${o.metadata.namespace}/${o.metadata.name}`), ['a/y', 'a/z', 'b/x']);
    assert.deepEqual(store.scan('configmaps', 'a').map((o) => o.metadata.name), ['y', 'z']);
  });
});

describe('Store listeners', () => {
  it('a listener that throws neither undoes the write nor stops other listeners', () => {
    const errors: unknown[] = [];
    const store = new Store({ historySize: 10, onListenerError: (e) => errors.push(e) });
    const seen: string[] = [];
    store.subscribe(() => {
      throw new Error('boom');
    });
    store.subscribe((e) => seen.push(e.object.metadata.name!));
    store.insert('configmaps', cm('a'));
    assert.deepEqual(seen, ['a']);
    assert.equal(errors.length, 1);
    assert.ok(store.get('configmaps', 'ns', 'a'));
  });
});
