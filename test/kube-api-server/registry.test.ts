import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { isApiError } from './api-error.ts';
import { Registry } from './registry.ts';
import { resourceByPlural } from './resources.ts';
import { Store } from './store.ts';
import type { KubeObject } from './types.ts';

const def = (p: string) => resourceByPlural(p)!;
const pods = def('pods');
const cms = def('configmaps');
const none = { labels: [], fields: [] };

function setup(historySize = 1000): Registry {
  const reg = new Registry(new Store({ historySize }), pino({ level: 'silent' }));
  for (const name of ['default', 'other']) reg.create(def('namespaces'), undefined, { metadata: { name } });
  return reg;
}

function podBody(name: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { apiVersion: 'v1', kind: 'Pod', metadata: { name }, spec: { containers: [{ name: 'app', image: 'img:v1' }], ...extra } };
}

const status = (code: number, reason?: string) => (e: unknown) => isApiError(e) && e.code === code && (reason === undefined || e.reason === reason);

describe('Registry create', () => {
  it('fills system metadata and pod defaults, and resets pod status', () => {
    const reg = setup();
    const pod = reg.create(pods, 'default', { ...podBody('p'), status: { phase: 'Running' } });
    assert.match(pod.metadata.uid!, /^[0-9a-f-]{36}$/);
    assert.match(pod.metadata.creationTimestamp!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.equal(pod.metadata.generation, 1);
    assert.equal(pod.metadata.namespace, 'default');
    assert.deepEqual(pod.status, { phase: 'Pending', qosClass: 'BestEffort' });
    const spec = pod.spec as Record<string, any>;
    assert.equal(spec.restartPolicy, 'Always');
    assert.equal(spec.terminationGracePeriodSeconds, 30);
    assert.equal(spec.containers[0].imagePullPolicy, 'IfNotPresent');
  });

  it('refuses duplicates (409 AlreadyExists), missing namespaces (404) and bad input (400/422)', () => {
    const reg = setup();
    reg.create(pods, 'default', podBody('p'));
    assert.throws(() => reg.create(pods, 'default', podBody('p')), status(409, 'AlreadyExists'));
    assert.throws(() => reg.create(pods, 'nowhere', podBody('p')), (e) => status(404, 'NotFound')(e) && /namespaces "nowhere" not found/.test((e as Error).message));
    assert.throws(() => reg.create(pods, 'default', podBody('Bad_Name')), status(422, 'Invalid'));
    assert.throws(() => reg.create(pods, 'default', { metadata: { name: 'x' }, spec: { containers: [] } }), status(422, 'Invalid'));
    assert.throws(() => reg.create(pods, 'default', { metadata: { name: 'x' }, spec: { containers: [{ name: 'a' }] } }), (e) => status(422)(e) && /image: Required value/.test((e as Error).message));
    assert.throws(() => reg.create(pods, 'default', { ...podBody('x'), kind: 'ConfigMap' }), status(400, 'BadRequest'));
    assert.throws(() => reg.create(pods, 'default', { ...podBody('x'), metadata: { name: 'x', namespace: 'other' } }), status(400));
    assert.throws(() => reg.create(pods, 'default', { ...podBody('x'), metadata: { name: 'x', labels: { a: 1 } } }), status(400));
    assert.throws(() => reg.create(pods, 'default', { ...podBody('x'), metadata: { name: 'x', resourceVersion: '5' } }), status(400));
    assert.throws(() => reg.create(pods, 'default', 'not an object'), status(400));
    assert.throws(() => reg.create(pods, 'default', { ...podBody('x'), status: 5 }), status(400));
    assert.throws(() => reg.create(cms, 'default', { metadata: {} }), status(422));
    assert.equal(reg.list(pods, { filter: none }).items.length, 1, 'nothing partial was stored');
  });

  it('generates names from generateName and encodes secret stringData', () => {
    const reg = setup();
    const cm = reg.create(cms, 'default', { metadata: { generateName: 'cfg-' }, data: { a: 'b' } });
    assert.match(cm.metadata.name!, /^cfg-[a-z0-9]{5}$/);
    const secret = reg.create(def('secrets'), 'default', { metadata: { name: 's' }, stringData: { token: 'hi' } });
    assert.deepEqual(secret.data, { token: Buffer.from('hi').toString('base64') });
    assert.equal(secret.stringData, undefined);
    assert.equal(secret.type, 'Opaque');
    assert.throws(() => reg.create(def('secrets'), 'default', { metadata: { name: 's2' }, data: { a: 'not base64!' } }), status(400));
  });
});

describe('Registry update and patch', () => {
  it('applies optimistic concurrency: a stale resourceVersion is a 409 Conflict', () => {
    const reg = setup();
    const v1 = reg.create(cms, 'default', { metadata: { name: 'c' }, data: { a: '1' } });
    const v2 = reg.update(cms, 'default', 'c', { ...v1, data: { a: '2' } });
    assert.notEqual(v2.metadata.resourceVersion, v1.metadata.resourceVersion);
    assert.throws(() => reg.update(cms, 'default', 'c', { ...v1, data: { a: '3' } }), (e) => status(409, 'Conflict')(e) && /the object has been modified/.test((e as Error).message));
    const { resourceVersion: _rv, ...metaWithoutRv } = v1.metadata;
    const v3 = reg.update(cms, 'default', 'c', { ...v1, metadata: metaWithoutRv, data: { a: '3' } });
    assert.deepEqual(v3.data, { a: '3' }, 'an update without resourceVersion is unconditional');
    assert.throws(() => reg.update(cms, 'default', 'nope', { metadata: { name: 'nope' } }), status(404));
    assert.throws(() => reg.update(cms, 'default', 'c', { ...v3, metadata: { ...v3.metadata, name: 'other' } }), status(400));
  });

  it('keeps status on main writes and spec on status writes', () => {
    const reg = setup();
    const pod = reg.create(pods, 'default', podBody('p', { nodeName: 'n1' }));
    const withStatus = reg.update(pods, 'default', 'p', { ...pod, status: { phase: 'Running' }, metadata: { ...pod.metadata, labels: { x: 'y' } } }, 'status');
    assert.deepEqual(withStatus.status, { phase: 'Running' });
    assert.equal(withStatus.metadata.labels, undefined, 'status writes do not change metadata');
    const relabeled = reg.update(pods, 'default', 'p', { ...withStatus, status: { phase: 'Failed' }, metadata: { ...withStatus.metadata, labels: { x: 'y' } } });
    assert.deepEqual(relabeled.status, { phase: 'Running' }, 'main writes ignore status');
    assert.deepEqual(relabeled.metadata.labels, { x: 'y' });
    assert.equal(relabeled.metadata.generation, 1, 'metadata changes do not bump generation');
  });

  it('bumps generation on spec changes and treats identical writes as no-ops', () => {
    const reg = setup();
    const pod = reg.create(pods, 'default', podBody('p'));
    const same = reg.update(pods, 'default', 'p', pod);
    assert.equal(same.metadata.resourceVersion, pod.metadata.resourceVersion);
    const newImage = reg.patch(pods, 'default', 'p', 'strategic', JSON.stringify({ spec: { containers: [{ name: 'app', image: 'img:v2' }] } }), 'main');
    assert.equal(newImage.metadata.generation, 2);
  });

  it('refuses pod spec changes other than images (422)', () => {
    const reg = setup();
    reg.create(pods, 'default', podBody('p'));
    assert.throws(
      () => reg.patch(pods, 'default', 'p', 'strategic', JSON.stringify({ spec: { containers: [{ name: 'app', env: [{ name: 'A', value: '1' }] }] } }), 'main'),
      (e) => status(422, 'Invalid')(e) && /pod updates may not change fields/.test((e as Error).message),
    );
    assert.throws(() => reg.patch(pods, 'default', 'p', 'merge', JSON.stringify({ spec: { nodeName: 'n' } }), 'main'), status(422));
  });

  it('patches status through the status subresource only', () => {
    const reg = setup();
    reg.create(pods, 'default', podBody('p'));
    const out = reg.patch(pods, 'default', 'p', 'merge', JSON.stringify({ metadata: { labels: { a: 'b' } }, status: { phase: 'Running' } }), 'status');
    assert.equal((out.status as Record<string, string>).phase, 'Running');
    assert.equal(out.metadata.labels, undefined);
  });

  it('refuses a patch carrying a stale resourceVersion, and undecodable patches', () => {
    const reg = setup();
    const c = reg.create(cms, 'default', { metadata: { name: 'c' } });
    reg.patch(cms, 'default', 'c', 'merge', '{"data":{"a":"1"}}', 'main');
    assert.throws(() => reg.patch(cms, 'default', 'c', 'merge', JSON.stringify({ metadata: { resourceVersion: c.metadata.resourceVersion }, data: { a: '2' } }), 'main'), status(409));
    assert.throws(() => reg.patch(cms, 'default', 'c', 'merge', '{not json', 'main'), status(400));
    assert.throws(() => reg.patch(cms, 'default', 'c', 'merge', '"a string"', 'main'), status(422));
    assert.throws(() => reg.patch(cms, 'default', 'missing', 'merge', '{}', 'main'), status(404));
    assert.deepEqual(reg.get(cms, 'default', 'c').data, { a: '1' });
  });

  it('server-side apply creates and updates, and needs a fieldManager', () => {
    const reg = setup();
    const yaml = 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  a: "1"\n';
    assert.throws(() => reg.patch(cms, 'default', 'c', 'apply', yaml, 'main'), status(400));
    const created = reg.patch(cms, 'default', 'c', 'apply', yaml, 'main', 'me');
    assert.deepEqual(created.data, { a: '1' });
    const updated = reg.patch(cms, 'default', 'c', 'apply', yaml.replace('"1"', '"2"'), 'main', 'me');
    assert.deepEqual(updated.data, { a: '2' });
  });
});

describe('Registry delete', () => {
  it('deletes pods on a node gracefully, and for good with grace 0', () => {
    const reg = setup();
    reg.create(pods, 'default', podBody('p', { nodeName: 'n1', terminationGracePeriodSeconds: 20 }));
    const first = reg.delete(pods, 'default', 'p');
    assert.equal(first.removed, false);
    assert.equal(first.object.metadata.deletionGracePeriodSeconds, 20);
    assert.ok(first.object.metadata.deletionTimestamp);
    const again = reg.delete(pods, 'default', 'p', { gracePeriodSeconds: 25 });
    assert.equal(again.object.metadata.resourceVersion, first.object.metadata.resourceVersion, 'a longer grace period changes nothing');
    const shorter = reg.delete(pods, 'default', 'p', { gracePeriodSeconds: 5 });
    assert.equal(shorter.object.metadata.deletionGracePeriodSeconds, 5);
    const final = reg.delete(pods, 'default', 'p', { gracePeriodSeconds: 0 });
    assert.equal(final.removed, true);
    assert.throws(() => reg.get(pods, 'default', 'p'), status(404));
  });

  it('deletes unscheduled and finished pods at once', () => {
    const reg = setup();
    reg.create(pods, 'default', podBody('unbound'));
    assert.equal(reg.delete(pods, 'default', 'unbound').removed, true);
    reg.create(pods, 'default', podBody('done', { nodeName: 'n1' }));
    reg.patch(pods, 'default', 'done', 'merge', '{"status":{"phase":"Succeeded"}}', 'status');
    assert.equal(reg.delete(pods, 'default', 'done').removed, true);
  });

  it('waits for finalizers, then removes the object when the last one goes', () => {
    const reg = setup();
    reg.create(cms, 'default', { metadata: { name: 'c', finalizers: ['example.com/hold'] } });
    const marked = reg.delete(cms, 'default', 'c');
    assert.equal(marked.removed, false);
    assert.ok(marked.object.metadata.deletionTimestamp);
    assert.throws(() => reg.patch(cms, 'default', 'c', 'merge', '{"metadata":{"finalizers":["example.com/hold","x/new"]}}', 'main'), status(422));
    reg.patch(cms, 'default', 'c', 'merge', '{"metadata":{"finalizers":null}}', 'main');
    assert.throws(() => reg.get(cms, 'default', 'c'), status(404));
  });

  it('checks preconditions (409)', () => {
    const reg = setup();
    const c = reg.create(cms, 'default', { metadata: { name: 'c' } });
    assert.throws(() => reg.delete(cms, 'default', 'c', { preconditions: { uid: 'other' } }), status(409));
    assert.throws(() => reg.delete(cms, 'default', 'c', { preconditions: { resourceVersion: '1' } }), status(409));
    assert.equal(reg.delete(cms, 'default', 'c', { preconditions: { uid: c.metadata.uid } }).removed, true);
  });

  it('removes a namespace at once when all its contents go at once', () => {
    const reg = setup();
    reg.create(cms, 'other', { metadata: { name: 'c' } });
    reg.create(pods, 'other', podBody('unbound'));
    const res = reg.delete(def('namespaces'), undefined, 'other');
    assert.equal(res.removed, true);
    assert.equal(res.object.metadata.name, 'other');
    assert.equal((res.object.status as Record<string, string>).phase, 'Terminating');
    assert.throws(() => reg.get(def('namespaces'), undefined, 'other'), status(404));
  });

  it('terminates a namespace: contents go, new content is refused, then the namespace goes', () => {
    const reg = setup();
    reg.create(cms, 'other', { metadata: { name: 'c' } });
    reg.create(pods, 'other', podBody('p', { nodeName: 'n1' }));
    const res = reg.delete(def('namespaces'), undefined, 'other');
    assert.equal(res.removed, false, 'a draining pod keeps the namespace');
    assert.equal((res.object.status as Record<string, string>).phase, 'Terminating');
    assert.throws(() => reg.get(cms, 'other', 'c'), status(404));
    assert.throws(() => reg.create(cms, 'other', { metadata: { name: 'd' } }), status(403, 'Forbidden'));
    reg.delete(pods, 'other', 'p', { gracePeriodSeconds: 0 });
    assert.throws(() => reg.get(def('namespaces'), undefined, 'other'), status(404));
  });
});

describe('Registry list', () => {
  it('pages with limit/continue at a consistent resource version', () => {
    const reg = setup();
    for (const n of ['a', 'b', 'c', 'd', 'e']) reg.create(cms, 'default', { metadata: { name: n } });
    const p1 = reg.list(cms, { filter: { ...none, namespace: 'default' }, limit: 2 });
    assert.deepEqual(p1.items.map((o) => o.metadata.name), ['a', 'b']);
    assert.equal(p1.remainingItemCount, 3);
    reg.delete(cms, 'default', 'c');
    reg.create(cms, 'default', { metadata: { name: 'bb' } });
    const p2 = reg.list(cms, { filter: { ...none, namespace: 'default' }, limit: 2, continueToken: p1.continueToken });
    assert.deepEqual(p2.items.map((o) => o.metadata.name), ['c', 'd'], 'the second page sees the first page\'s snapshot');
    const p3 = reg.list(cms, { filter: { ...none, namespace: 'default' }, limit: 2, continueToken: p2.continueToken });
    assert.deepEqual(p3.items.map((o) => o.metadata.name), ['e']);
    assert.equal(p3.continueToken, undefined);
    assert.equal(p3.resourceVersion, p1.resourceVersion);
    assert.throws(() => reg.list(cms, { filter: none, continueToken: 'garbage!' }), status(400));
  });

  it('serves Exact resource versions from history, 410 when too old, 504 when in the future', () => {
    const reg = setup(4);
    const a = reg.create(cms, 'default', { metadata: { name: 'a' } });
    reg.create(cms, 'default', { metadata: { name: 'b' } });
    const exact = reg.list(cms, { filter: none, resourceVersion: a.metadata.resourceVersion, resourceVersionMatch: 'Exact' });
    assert.deepEqual(exact.items.map((o) => o.metadata.name), ['a']);
    for (const n of ['c', 'd', 'e', 'f']) reg.create(cms, 'default', { metadata: { name: n } });
    assert.throws(() => reg.list(cms, { filter: none, resourceVersion: a.metadata.resourceVersion, resourceVersionMatch: 'Exact' }), status(410, 'Expired'));
    assert.throws(() => reg.list(cms, { filter: none, resourceVersion: '999999' }), status(504));
    assert.throws(() => reg.list(cms, { filter: none, resourceVersion: 'abc' }), status(400));
  });
});

describe('Registry bind', () => {
  it('assigns a pod to a node once', () => {
    const reg = setup();
    reg.create(pods, 'default', podBody('p'));
    reg.bind('default', 'p', { target: { kind: 'Node', name: 'n1' } });
    const pod: KubeObject = reg.get(pods, 'default', 'p');
    assert.equal((pod.spec as Record<string, string>).nodeName, 'n1');
    assert.throws(() => reg.bind('default', 'p', { target: { kind: 'Node', name: 'n2' } }), status(409));
    assert.throws(() => reg.bind('default', 'p', {}), status(422));
  });
});
