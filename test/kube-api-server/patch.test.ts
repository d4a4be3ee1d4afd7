import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isApiError } from './api-error.ts';
import { applyConfiguration, jsonPatch, mergePatch, patchTypeOf, strategicMergePatch } from './patch.ts';

const pod = () => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'p', labels: { a: '1', b: '2' }, finalizers: ['x'] },
  spec: {
    containers: [
      { name: 'app', image: 'app:v1', env: [{ name: 'A', value: '1' }, { name: 'B', value: '2' }] },
      { name: 'side', image: 'side:v1' },
    ],
    tolerations: [{ key: 't1' }],
  },
  status: { conditions: [{ type: 'Ready', status: 'False' }, { type: 'PodScheduled', status: 'True' }] },
});

describe('patchTypeOf', () => {
  it('maps content types and refuses others with 415', () => {
    assert.equal(patchTypeOf('application/merge-patch+json'), 'merge');
    assert.equal(patchTypeOf('application/strategic-merge-patch+json; charset=utf-8'), 'strategic');
    assert.equal(patchTypeOf('application/json-patch+json'), 'json');
    assert.equal(patchTypeOf('application/apply-patch+yaml'), 'apply');
    assert.throws(() => patchTypeOf('application/json'), (e) => isApiError(e) && e.code === 415);
    assert.throws(() => patchTypeOf(undefined), (e) => isApiError(e) && e.code === 415);
  });
});

describe('JSON merge patch (RFC 7386)', () => {
  it('merges objects, deletes with null and replaces lists whole', () => {
    const out = mergePatch(pod(), { metadata: { labels: { a: null, c: '3' } }, spec: { tolerations: [{ key: 't2' }] } }) as ReturnType<typeof pod>;
    assert.deepEqual(out.metadata.labels, { b: '2', c: '3' });
    assert.deepEqual(out.spec.tolerations, [{ key: 't2' }]);
    assert.equal(out.spec.containers.length, 2, 'untouched fields stay');
  });

  it('does not modify its input', () => {
    const original = pod();
    mergePatch(original, { metadata: { labels: { a: null } } });
    assert.equal(original.metadata.labels.a, '1');
  });
});

describe('strategic merge patch', () => {
  it('merges containers by name and env by name, leaving other items alone', () => {
    const out = strategicMergePatch(pod(), { spec: { containers: [{ name: 'app', image: 'app:v2', env: [{ name: 'C', value: '3' }] }] } }, 'Pod') as ReturnType<typeof pod>;
    assert.equal(out.spec.containers.length, 2);
    assert.equal(out.spec.containers[0]!.image, 'app:v2');
    assert.deepEqual(out.spec.containers[0]!.env!.map((e) => e.name), ['A', 'B', 'C']);
    assert.equal(out.spec.containers[1]!.image, 'side:v1');
  });

  it('merges status conditions by type', () => {
    const out = strategicMergePatch(pod(), { status: { conditions: [{ type: 'Ready', status: 'True' }, { type: 'Initialized', status: 'True' }] } }, 'Pod') as ReturnType<typeof pod>;
    assert.deepEqual(
      out.status.conditions.map((c) => `${c.type}=${c.status}`),
      ['Ready=True', 'PodScheduled=True', 'Initialized=True'],
    );
  });

  it('replaces lists that have no merge strategy', () => {
    const out = strategicMergePatch(pod(), { spec: { tolerations: [{ key: 't9' }] } }, 'Pod') as ReturnType<typeof pod>;
    assert.deepEqual(out.spec.tolerations, [{ key: 't9' }]);
  });

  it('honours $patch: delete on list items and maps, and $patch: replace', () => {
    const out = strategicMergePatch(pod(), { spec: { containers: [{ name: 'side', $patch: 'delete' }] }, status: { $patch: 'delete' } }, 'Pod') as Record<string, any>;
    assert.deepEqual(out.spec.containers.map((c: { name: string }) => c.name), ['app']);
    assert.equal(out.status, undefined);
    const replaced = strategicMergePatch(pod(), { metadata: { labels: { $patch: 'replace', z: '9' } } }, 'Pod') as Record<string, any>;
    assert.deepEqual(replaced.metadata.labels, { z: '9' });
    const listReplaced = strategicMergePatch(pod(), { spec: { containers: [{ $patch: 'replace' }, { name: 'only', image: 'o' }] } }, 'Pod') as Record<string, any>;
    assert.deepEqual(listReplaced.spec.containers, [{ name: 'only', image: 'o' }]);
  });

  it('applies kubectl apply directives: $setElementOrder and $deleteFromPrimitiveList', () => {
    const out = strategicMergePatch(
      pod(),
      {
        metadata: { '$deleteFromPrimitiveList/finalizers': ['x'] },
        spec: { '$setElementOrder/containers': [{ name: 'side' }, { name: 'app' }], containers: [{ name: 'app', image: 'app:v3' }] },
      },
      'Pod',
    ) as ReturnType<typeof pod>;
    assert.deepEqual(out.spec.containers.map((c) => c.name), ['side', 'app']);
    assert.equal(out.spec.containers[1]!.image, 'app:v3');
    assert.deepEqual(out.metadata.finalizers, []);
    assert.equal(JSON.stringify(out).includes('$'), false, 'no directive survives into the object');
  });

  it('merges primitive lists with a merge strategy as sets', () => {
    const out = strategicMergePatch(pod(), { metadata: { finalizers: ['x', 'y'] } }, 'Pod') as ReturnType<typeof pod>;
    assert.deepEqual(out.metadata.finalizers, ['x', 'y']);
  });

  it('keeps only $retainKeys keys', () => {
    const original = { spec: { volumes: [{ name: 'v', emptyDir: {}, hostPath: { path: '/x' } }] } };
    const out = strategicMergePatch(original, { spec: { volumes: [{ name: 'v', $retainKeys: ['name', 'emptyDir'], emptyDir: { medium: 'Memory' } }] } }, 'Pod') as Record<string, any>;
    assert.deepEqual(out.spec.volumes, [{ name: 'v', emptyDir: { medium: 'Memory' } }]);
  });

  it('rejects bad patches with 400', () => {
    assert.throws(() => strategicMergePatch(pod(), [], 'Pod'), (e) => isApiError(e) && e.code === 400);
    assert.throws(() => strategicMergePatch(pod(), { spec: { containers: [{ image: 'no-name' }] } }, 'Pod'), (e) => isApiError(e) && e.code === 400 && /merge key: name/.test(e.message));
    assert.throws(() => strategicMergePatch(pod(), { spec: { $patch: 'explode' } }, 'Pod'), (e) => isApiError(e) && e.code === 400);
    assert.throws(() => strategicMergePatch(pod(), { spec: { containers: ['x'] } }, 'Pod'), (e) => isApiError(e) && e.code === 400);
  });
});

describe('JSON patch (RFC 6902)', () => {
  it('applies operations without touching its input', () => {
    const original = pod();
    const out = jsonPatch(original, [
      { op: 'replace', path: '/spec/containers/0/image', value: 'app:v9' },
      { op: 'add', path: '/metadata/labels/c', value: '3' },
      { op: 'remove', path: '/metadata/labels/a' },
      { op: 'test', path: '/metadata/name', value: 'p' },
    ]) as ReturnType<typeof pod>;
    assert.equal(out.spec.containers[0]!.image, 'app:v9');
    assert.deepEqual(out.metadata.labels, { b: '2', c: '3' });
    assert.equal(original.spec.containers[0]!.image, 'app:v1');
  });

  it('answers a failed test or a missing path with 422, and a malformed patch with 400', () => {
    assert.throws(() => jsonPatch(pod(), [{ op: 'test', path: '/metadata/name', value: 'q' }]), (e) => isApiError(e) && e.code === 422);
    assert.throws(() => jsonPatch(pod(), [{ op: 'remove', path: '/nope/deeper' }]), (e) => isApiError(e) && e.code === 422);
    assert.throws(() => jsonPatch(pod(), { op: 'add' }), (e) => isApiError(e) && e.code === 400);
    assert.throws(() => jsonPatch(pod(), [{ op: 'frobnicate', path: '/a' }]), (e) => isApiError(e) && e.code === 400);
    assert.throws(() => jsonPatch(pod(), [{ op: 'add', path: '/__proto__/polluted', value: 1 }]), (e) => isApiError(e));
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });
});

describe('server-side apply (simplified)', () => {
  it('merges the applied configuration with strategic rules', () => {
    const out = applyConfiguration(pod(), { metadata: { labels: { d: '4' } }, spec: { containers: [{ name: 'app', image: 'app:v5' }] } }, 'Pod') as ReturnType<typeof pod>;
    assert.equal(out.spec.containers[0]!.image, 'app:v5');
    assert.equal(out.spec.containers.length, 2);
    assert.equal((out.metadata.labels as Record<string, string>).d, '4');
  });
});
