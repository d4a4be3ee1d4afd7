import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startKubeApiServer, type KubeApiServer } from './server.ts';
import { nodeObject, rawRequest, rawWatch, startStubKubelet } from './testing.ts';

const podBody = (name: string, extra: Record<string, unknown> = {}) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, labels: { app: 'web' } },
  spec: { containers: [{ name: 'app', image: 'img:v1' }], ...extra },
});

describe('kube API server over HTTP', () => {
  let srv: KubeApiServer;
  const req = (path: string, opts: Parameters<typeof rawRequest>[2] = {}) => rawRequest(srv.url, path, { token: srv.token, ...opts });

  before(async () => {
    srv = await startKubeApiServer({ bookmarkIntervalMs: 100, historySize: 50 });
  });
  after(async () => {
    await srv.close();
  });

  it('requires the bearer token, except for /version and health checks', async () => {
    const anon = await rawRequest(srv.url, '/api/v1/namespaces');
    assert.equal(anon.status, 401);
    assert.equal(anon.json.kind, 'Status');
    assert.equal(anon.json.reason, 'Unauthorized');
    assert.equal((await rawRequest(srv.url, '/api/v1/namespaces', { token: 'wrong' })).status, 401);
    assert.equal((await rawRequest(srv.url, '/api/v1/no-such-thing')).status, 401, 'unauthenticated clients learn nothing about paths');
    assert.equal((await rawRequest(srv.url, '/version')).json.major, '1');
    assert.equal((await rawRequest(srv.url, '/healthz')).text, 'ok');
    const ok = await req('/api/v1/namespaces');
    assert.equal(ok.status, 200);
    assert.deepEqual(ok.json.items.map((n: any) => n.metadata.name).sort(), ['default', 'kube-node-lease', 'kube-public', 'kube-system']);
  });

  it('serves HTTPS with its self-signed certificate', async () => {
    const res = await rawRequest(srv.httpsUrl!, '/api/v1/namespaces/default', { token: srv.token, ca: srv.tls.cert });
    assert.equal(res.status, 200);
    assert.equal(res.json.metadata.name, 'default');
  });

  it('answers errors with Status objects and the right codes', async () => {
    const unknown = await req('/api/v1/frobs');
    assert.equal(unknown.status, 404);
    assert.equal(unknown.json.reason, 'NotFound');
    const missing = await req('/api/v1/namespaces/default/pods/ghost');
    assert.equal(missing.status, 404);
    assert.deepEqual([missing.json.kind, missing.json.status, missing.json.message, missing.json.details.name, missing.json.code], ['Status', 'Failure', 'pods "ghost" not found', 'ghost', 404]);
    assert.equal((await req('/api/v1/namespaces/default/pods', { method: 'POST', body: '{broken' })).status, 400);
    assert.equal((await req('/api/v1/namespaces/default/pods', { method: 'POST', body: 'x', contentType: 'application/vnd.kubernetes.protobuf' })).status, 415);
    assert.equal((await req('/api/v1/namespaces/default/pods', { accept: 'application/vnd.kubernetes.protobuf' })).status, 406);
    assert.equal((await req('/api/v1/namespaces/default/pods/x', { method: 'POST', body: {} })).status, 405);
    assert.equal((await req('/api/v1/pods', { method: 'POST', body: podBody('nowhere') })).status, 405);
    assert.equal((await req('/api/v1/pods', { method: 'DELETE' })).status, 405);
    assert.equal((await req('/api/v1/namespaces/default/pods?labelSelector=a%20in%20(', {})).status, 400);
    assert.equal((await req('/api/v1/namespaces/default/pods?fieldSelector=spec.bogus%3D1', {})).status, 400);
    assert.equal((await req('/api/v1/namespaces/default/pods?limit=abc', {})).status, 400);
    assert.equal((await req('/api/v1/namespaces/default/configmaps', { method: 'POST', body: { metadata: { name: 'c' } }, token: srv.token + '' })).status, 201);
    assert.equal((await req('/api/v1/namespaces/default/configmaps/c?dryRun=All', { method: 'DELETE' })).status, 400);
    assert.ok(srv.store.get('configmaps', 'default', 'c'), 'a refused dry run deletes nothing');
    const big = await req('/api/v1/namespaces/default/configmaps', { method: 'POST', body: { metadata: { name: 'big' }, data: { a: 'x'.repeat(4 * 1024 * 1024) } } });
    assert.equal(big.status, 413);
    assert.equal((await req('/api/v1/namespaces/default/configmaps/c', { method: 'PATCH', body: '{}', contentType: 'text/plain' })).status, 415);
  });

  it('creates, lists with a resourceVersion, prints tables and deletes', async () => {
    const created = await req('/api/v1/namespaces/default/pods', { method: 'POST', body: podBody('p1', { nodeName: 'node-x' }) });
    assert.equal(created.status, 201);
    const list = await req('/api/v1/namespaces/default/pods?labelSelector=app%3Dweb');
    assert.equal(list.json.kind, 'PodList');
    assert.equal(list.json.apiVersion, 'v1');
    assert.ok(Number(list.json.metadata.resourceVersion) >= Number(created.json.metadata.resourceVersion));
    assert.deepEqual(list.json.items.map((p: any) => p.metadata.name), ['p1']);
    const all = await req('/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-x');
    assert.deepEqual(all.json.items.map((p: any) => p.metadata.name), ['p1']);
    const table = await req('/api/v1/namespaces/default/pods', { accept: 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json' });
    assert.equal(table.json.kind, 'Table');
    assert.deepEqual(table.json.rows[0].cells.slice(0, 4), ['p1', '0/1', 'Pending', 0]);
    const status = await req('/api/v1/namespaces/default/pods/p1/status', { method: 'PATCH', body: { status: { phase: 'Running' } }, contentType: 'application/merge-patch+json' });
    assert.equal(status.json.status.phase, 'Running');
    const del = await req('/api/v1/namespaces/default/pods/p1', { method: 'DELETE', body: { kind: 'DeleteOptions', apiVersion: 'v1', gracePeriodSeconds: 10 } });
    assert.equal(del.status, 200);
    assert.equal(del.json.metadata.deletionGracePeriodSeconds, 10);
    const gone = await req('/api/v1/namespaces/default/pods/p1?gracePeriodSeconds=0', { method: 'DELETE' });
    assert.equal(gone.status, 200);
    assert.equal(srv.store.get('pods', 'default', 'p1'), undefined);
    const cmDel = await req('/api/v1/namespaces/default/configmaps/c', { method: 'DELETE' });
    assert.deepEqual([cmDel.json.kind, cmDel.json.status, cmDel.json.details.name], ['Status', 'Success', 'c']);
  });

  it('serves discovery and an OpenAPI v3 document kubectl can read', async () => {
    const core = await req('/api/v1');
    const pods = core.json.resources.find((r: any) => r.name === 'pods');
    assert.deepEqual(pods.shortNames, ['po']);
    assert.ok(pods.verbs.includes('watch'));
    assert.ok(core.json.resources.some((r: any) => r.name === 'pods/status'));
    assert.ok(core.json.resources.some((r: any) => r.name === 'pods/log'));
    const groups = await req('/apis');
    assert.deepEqual(groups.json.groups.map((g: { name: string }) => g.name).sort(), ['apps', 'coordination.k8s.io', 'discovery.k8s.io']);
    const leases = await req('/apis/coordination.k8s.io/v1');
    assert.equal(leases.json.resources[0].kind, 'Lease');
    const root = await req('/openapi/v3');
    const docUrl = root.json.paths['api/v1'].serverRelativeURL;
    const doc = await req(docUrl);
    const patch = doc.json.paths['/api/v1/namespaces/{namespace}/pods/{name}'].patch;
    assert.deepEqual(patch['x-kubernetes-group-version-kind'], { group: '', version: 'v1', kind: 'Pod' });
    assert.ok(patch.parameters.some((p: any) => p.name === 'fieldValidation' && p.in === 'query'));
    assert.equal((await req('/openapi/v3/apis/apps/v1')).status, 200);
    assert.equal((await req('/openapi/v3/apis/batch/v1')).status, 404);
  });
});

describe('kube API server watches', () => {
  let srv: KubeApiServer;
  const req = (path: string, opts: Parameters<typeof rawRequest>[2] = {}) => rawRequest(srv.url, path, { token: srv.token, ...opts });
  const watch = (path: string, accept?: string) => rawWatch(srv.url, path, srv.token, accept);
  const mkcm = (name: string, labels: Record<string, string> = {}) => srv.store.create('configmaps', { metadata: { name, namespace: 'default', labels } });

  before(async () => {
    srv = await startKubeApiServer({ bookmarkIntervalMs: 100, historySize: 5 });
  });
  after(async () => {
    await srv.close();
  });

  it('sends current objects, then changes, then resumes from a resourceVersion', async () => {
    mkcm('w1');
    const w = await watch('/api/v1/namespaces/default/configmaps?watch=true');
    assert.equal(w.status, 200);
    const first = await w.next();
    assert.deepEqual([first.type, first.object.metadata.name], ['ADDED', 'w1']);
    srv.store.patch('configmaps', 'default', 'w1', 'merge', { data: { a: '1' } });
    const modified = await w.next();
    assert.equal(modified.type, 'MODIFIED');
    w.close();
    const lastRv = modified.object.metadata.resourceVersion;
    mkcm('w2');
    srv.store.delete('configmaps', 'default', 'w1');
    const resumed = await watch(`/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=${lastRv}`);
    const e1 = await resumed.next();
    const e2 = await resumed.next();
    assert.deepEqual([e1.type, e1.object.metadata.name, e2.type, e2.object.metadata.name], ['ADDED', 'w2', 'DELETED', 'w1']);
    resumed.close();
  });

  it('answers a too-old resourceVersion with an ERROR event carrying 410 Expired, then ends the stream', async () => {
    const rv = srv.store.resourceVersion;
    srv.compactHistory();
    const w = await watch(`/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=${rv}`);
    const e = await w.next();
    assert.equal(e.type, 'ERROR');
    assert.deepEqual([e.object.kind, e.object.code, e.object.reason], ['Status', 410, 'Expired']);
    await w.ended;
    const list = await req(`/api/v1/namespaces/default/configmaps?resourceVersion=${rv}&resourceVersionMatch=Exact`);
    assert.equal(list.status, 410);
    assert.equal(list.json.reason, 'Expired');
  });

  it('sends bookmarks when allowed, and ends at timeoutSeconds', async () => {
    const w = await watch('/api/v1/namespaces/default/configmaps?watch=true&allowWatchBookmarks=true&timeoutSeconds=1&resourceVersion=' + srv.store.resourceVersion);
    const b = await w.next(2000);
    assert.equal(b.type, 'BOOKMARK');
    assert.equal(b.object.kind, 'ConfigMap');
    assert.equal(b.object.metadata.resourceVersion, String(srv.store.resourceVersion));
    const started = Date.now();
    await w.ended;
    assert.ok(Date.now() - started < 1500, 'the stream ended at its timeout');
  });

  it('reports objects leaving a field or label selection as DELETED', async () => {
    mkcm('sel', { app: 'web' });
    const w = await watch('/api/v1/namespaces/default/configmaps?watch=true&labelSelector=app%3Dweb&fieldSelector=metadata.name%3Dsel');
    assert.equal((await w.next()).type, 'ADDED');
    srv.store.patch('configmaps', 'default', 'sel', 'merge', { metadata: { labels: { app: 'db' } } });
    const left = await w.next();
    assert.equal(left.type, 'DELETED');
    srv.store.patch('configmaps', 'default', 'sel', 'merge', { metadata: { labels: { app: 'web' } } });
    assert.equal((await w.next()).type, 'ADDED');
    w.close();
  });

  it('serves the legacy /watch/ path for one object, and sendInitialEvents with its end bookmark', async () => {
    mkcm('one');
    mkcm('two');
    const legacy = await watch('/api/v1/watch/namespaces/default/configmaps/one');
    const ev = await legacy.next();
    assert.equal(ev.object.metadata.name, 'one');
    srv.store.patch('configmaps', 'default', 'two', 'merge', { data: { x: 'y' } });
    srv.store.patch('configmaps', 'default', 'one', 'merge', { data: { x: 'y' } });
    const next = await legacy.next();
    assert.deepEqual([next.type, next.object.metadata.name], ['MODIFIED', 'one']);
    legacy.close();
    const initial = await watch('/api/v1/namespaces/default/configmaps?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true');
    const names: string[] = [];
    for (;;) {
      const e = await initial.next();
      if (e.type === 'BOOKMARK') {
        assert.equal(e.object.metadata.annotations['k8s.io/initial-events-end'], 'true');
        break;
      }
      names.push(e.object.metadata.name);
    }
    assert.ok(names.includes('one') && names.includes('two'));
    initial.close();
    assert.equal((await req('/api/v1/namespaces/default/configmaps?watch=true&sendInitialEvents=true')).status, 400);
  });

  it('keeps data across stop/restart on the same port, and cuts watches when stopping', async () => {
    mkcm('durable');
    const port = new URL(srv.url).port;
    const w = await watch('/api/v1/namespaces/default/configmaps?watch=true');
    await srv.stop();
    await w.ended;
    await assert.rejects(rawRequest(srv.url, '/healthz'), /ECONNREFUSED/);
    await srv.restart();
    assert.equal(new URL(srv.url).port, port);
    const got = await req('/api/v1/namespaces/default/configmaps/durable');
    assert.equal(got.status, 200);
  });

  it('injects faults for matching requests only, as many times as asked', async () => {
    srv.injectFault({ method: 'GET', path: '/configmaps/durable', status: 503, reason: 'ServiceUnavailable', times: 2 });
    assert.equal((await req('/api/v1/namespaces/default/pods')).status, 200);
    const f1 = await req('/api/v1/namespaces/default/configmaps/durable');
    assert.deepEqual([f1.status, f1.json.reason], [503, 'ServiceUnavailable']);
    assert.equal((await req('/api/v1/namespaces/default/configmaps/durable')).status, 503);
    assert.equal((await req('/api/v1/namespaces/default/configmaps/durable')).status, 200);
    assert.throws(() => srv.injectFault({ status: 200 }), TypeError);
  });
});

describe('kube API server pod logs', () => {
  let srv: KubeApiServer;
  let kubelet: Awaited<ReturnType<typeof startStubKubelet>>;
  const req = (path: string) => rawRequest(srv.url, path, { token: srv.token });

  before(async () => {
    srv = await startKubeApiServer({ https: false, kubeletClient: { bearerToken: 'kubelet-secret' } });
    kubelet = await startStubKubelet({ cert: srv.tls.cert, key: srv.tls.key, lines: ['one', 'two'], followLines: ['three'], containers: ['app', 'side'] });
    srv.store.create('nodes', nodeObject('n1', kubelet.port));
    srv.store.create('nodes', nodeObject('no-address', kubelet.port, ''));
    srv.store.create('nodes', nodeObject('dead', 1));
    srv.store.create('pods', { metadata: { name: 'p', namespace: 'default' }, spec: { nodeName: 'n1', containers: [{ name: 'app', image: 'i' }, { name: 'side', image: 'i' }] } });
  });
  after(async () => {
    await kubelet.close();
    await srv.close();
  });

  it('proxies to the kubelet with the server\'s credentials and the log options', async () => {
    const res = await req('/api/v1/namespaces/default/pods/p/log?container=app&tailLines=5&timestamps=true&follow=true');
    assert.equal(res.status, 200);
    assert.equal(res.text, 'app: one\napp: two\napp: three\n');
    const seen = kubelet.requests.at(-1)!;
    assert.equal(seen.path, '/containerLogs/default/p/app');
    assert.deepEqual([seen.query.get('tailLines'), seen.query.get('timestamps'), seen.query.get('follow')], ['5', 'true', 'true']);
    assert.equal(seen.authorization, 'Bearer kubelet-secret');
    assert.equal(seen.clientCN, 'kube-api-server-client');
  });

  it('explains what is wrong when it cannot proxy', async () => {
    const noContainer = await req('/api/v1/namespaces/default/pods/p/log');
    assert.equal(noContainer.status, 400);
    assert.match(noContainer.json.message, /a container name must be specified for pod p, choose one of: \[app side\]/);
    assert.equal((await req('/api/v1/namespaces/default/pods/p/log?container=nope')).status, 400);
    assert.equal((await req('/api/v1/namespaces/default/pods/ghost/log')).status, 404);
    srv.store.create('pods', { metadata: { name: 'unbound', namespace: 'default' }, spec: { containers: [{ name: 'app', image: 'i' }] } });
    assert.match((await req('/api/v1/namespaces/default/pods/unbound/log')).json.message, /does not have a host assigned/);
    srv.store.create('pods', { metadata: { name: 'q', namespace: 'default' }, spec: { nodeName: 'no-address', containers: [{ name: 'app', image: 'i' }] } });
    assert.equal((await req('/api/v1/namespaces/default/pods/q/log')).status, 503);
    srv.store.create('pods', { metadata: { name: 'r', namespace: 'default' }, spec: { nodeName: 'dead', containers: [{ name: 'app', image: 'i' }] } });
    const dead = await req('/api/v1/namespaces/default/pods/r/log');
    assert.equal(dead.status, 500);
    assert.match(dead.json.message, /ECONNREFUSED/);
    srv.store.create('pods', { metadata: { name: 's', namespace: 'default' }, spec: { nodeName: 'n1', containers: [{ name: 'other', image: 'i' }] } });
    const kubelet404 = await req('/api/v1/namespaces/default/pods/s/log');
    assert.equal(kubelet404.status, 404);
    assert.match(kubelet404.json.message, /container not found/);
  });
});

describe('startKubeApiServer options', () => {
  it('refuses invalid options with a clear error', async () => {
    await assert.rejects(startKubeApiServer({ historySize: 0 }), (e: unknown) => e instanceof TypeError && /historySize/.test(e.message));
    await assert.rejects(startKubeApiServer({ port: 70000 }), /port/);
  });

  it('can run without authentication', async () => {
    const srv = await startKubeApiServer({ token: null, https: false });
    try {
      assert.equal(srv.token, undefined);
      assert.equal((await rawRequest(srv.url, '/api/v1/namespaces')).status, 200);
    } finally {
      await srv.close();
    }
  });
});
