import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isApiError } from './api-error.ts';
import { route } from './router.ts';

function resource(path: string): [string, string | undefined, string | undefined, string | undefined, boolean] {
  const r = route(path);
  assert.equal(r.kind, 'resource', path);
  if (r.kind !== 'resource') throw new Error('unreachable');
  return [r.def.plural, r.namespace, r.name, r.subresource, r.watch];
}

describe('route', () => {
  it('maps namespaced, cluster-scoped and all-namespaces paths', () => {
    assert.deepEqual(resource('/api/v1/namespaces/default/pods'), ['pods', 'default', undefined, undefined, false]);
    assert.deepEqual(resource('/api/v1/namespaces/default/pods/p1/status'), ['pods', 'default', 'p1', 'status', false]);
    assert.deepEqual(resource('/api/v1/namespaces/default/pods/p1/log'), ['pods', 'default', 'p1', 'log', false]);
    assert.deepEqual(resource('/api/v1/pods'), ['pods', undefined, undefined, undefined, false]);
    assert.deepEqual(resource('/api/v1/nodes/n1/status'), ['nodes', undefined, 'n1', 'status', false]);
    assert.deepEqual(resource('/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1'), ['leases', 'kube-node-lease', 'n1', undefined, false]);
  });

  it('tells namespaces from namespaced resources under /namespaces', () => {
    assert.deepEqual(resource('/api/v1/namespaces'), ['namespaces', undefined, undefined, undefined, false]);
    assert.deepEqual(resource('/api/v1/namespaces/default'), ['namespaces', undefined, 'default', undefined, false]);
    assert.deepEqual(resource('/api/v1/namespaces/default/status'), ['namespaces', undefined, 'default', 'status', false]);
    assert.deepEqual(resource('/api/v1/namespaces/default/finalize'), ['namespaces', undefined, 'default', 'finalize', false]);
  });

  it('understands the legacy watch prefix', () => {
    assert.deepEqual(resource('/api/v1/watch/namespaces/default/pods'), ['pods', 'default', undefined, undefined, true]);
    assert.deepEqual(resource('/api/v1/watch/namespaces/default/pods/p1'), ['pods', 'default', 'p1', undefined, true]);
    assert.deepEqual(resource('/api/v1/watch/nodes'), ['nodes', undefined, undefined, undefined, true]);
  });

  it('routes discovery and OpenAPI', () => {
    assert.equal(route('/api').kind, 'apiVersions');
    assert.equal(route('/apis').kind, 'groupList');
    assert.deepEqual(route('/apis/coordination.k8s.io'), { kind: 'group', group: 'coordination.k8s.io' });
    assert.deepEqual(route('/api/v1'), { kind: 'resourceList', group: '', version: 'v1' });
    assert.deepEqual(route('/openapi/v3/api/v1'), { kind: 'openapi', gv: 'api/v1' });
    assert.equal(route('/version').kind, 'version');
    assert.equal(route('/healthz').kind, 'health');
  });

  it('answers 404 for what is not served', () => {
    for (const p of [
      '/api/v2/pods',
      '/api/v1/deployments',
      '/apis/batch/v1/namespaces/default/jobs',
      '/apis/apps/v1/namespaces/default/statefulsets',
      '/api/v1/pods/p1',
      '/api/v1/namespaces/default/nodes/n1',
      '/api/v1/namespaces/default/configmaps/c/status',
      '/api/v1/namespaces/default/pods/p/log/extra',
      '/api/v1/watch/namespaces/default/pods/p/status',
      '/apis/coordination.k8s.io/v1/leases/x',
      '/metrics',
    ]) {
      assert.throws(() => route(p), (e) => isApiError(e) && e.code === 404, p);
    }
    assert.throws(() => route('/api/v1/namespaces/%E0%A4%A'), (e) => isApiError(e) && e.code === 400);
  });
});
