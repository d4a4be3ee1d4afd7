/**
 * The kubelet HTTPS API: container logs from the host's LogStore, through `kubectl logs` and the
 * API server's log proxy (client certificate), or directly with a bearer token; follow, tailLines,
 * timestamps, sinceSeconds, limitBytes; callers without credentials (or with a certificate from
 * another CA, or a wrong token) are refused; /healthz is open.
 */
import assert from 'node:assert/strict';
import { request } from 'node:https';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { encode } from '../host/index.ts';
import { generateTestCertificate } from './kube-api-server/index.ts';
import { toolboxActor, type SignedTestActor } from './helpers/wat.ts';
import { instanceOf, isReady, KUBECTL, kubectl, KUBELET_TOKEN, podManifest, startKubeletHarness, waitForPod, type KubeletHarness } from './helpers/kubelet-harness.ts';
import { until } from './helpers/wait.ts';

interface Answer {
  status: number;
  text: string;
}

function kubeletGet(port: number, path: string, opts: { token?: string; cert?: string; key?: string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, rejectUnauthorized: false, agent: false, headers: opts.token ? { Authorization: `Bearer ${opts.token}` } : {}, ...(opts.cert ? { cert: opts.cert, key: opts.key } : {}) },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('node agent: kubelet API and container logs', () => {
  let h: KubeletHarness;
  let actor: SignedTestActor;
  let cacheDir: string;
  const logPath = (q = '') => `/containerLogs/default/logger/app${q}`;
  /** A line through the actor's logging link (the toolbox also logs `handling` for each call). */
  const actorLog = (body: string, pod = 'logger') => h.host.invokeActor(instanceOf(pod), 'wascc:logging/WriteLog', encode({ level: 1, body }));
  /** A line put straight into the actor's log, for exact tail/limit checks. */
  const writeLog = async (msg: string, pod = 'logger') => h.host.logs.append(instanceOf(pod), { time: Date.now(), level: 'info', stream: 'log', msg });

  before(async () => {
    h = await startKubeletHarness();
    cacheDir = await mkdtemp(join(tmpdir(), 'kubectl-cache-'));
    actor = await toolboxActor({ name: 'logger', caps: ['wascc:logging'] });
    h.puller.set('registry.test/logger:v1', actor.bytes);
    h.api.store.create('pods', podManifest('logger', { annotations: { 'wasmlet.dev/capabilities': 'logging' } }));
    await waitForPod(h.api, 'logger', isReady);
    for (const l of ['first line', 'second line', 'third line']) await writeLog(l);
  });
  after(async () => {
    await h?.close();
    if (cacheDir) await rm(cacheDir, { recursive: true, force: true });
  });

  const lines = (text: string) => text.split('\n').filter((l) => l && l !== 'handling');

  it('serves /healthz to anyone', async () => {
    assert.deepEqual(await kubeletGet(h.agent.port, '/healthz'), { status: 200, text: 'ok\n' });
  });

  it('refuses log requests without credentials, with a wrong token, or with a certificate from another CA', async () => {
    assert.equal((await kubeletGet(h.agent.port, logPath())).status, 401);
    assert.equal((await kubeletGet(h.agent.port, logPath(), { token: 'not-the-token' })).status, 401);
    const stranger = await generateTestCertificate('stranger');
    const r = await kubeletGet(h.agent.port, logPath(), { cert: stranger.clientCert, key: stranger.clientKey });
    assert.equal(r.status, 401);
    assert.doesNotMatch(r.text, /first line/);
  });

  it('serves the log to a bearer token and to a client certificate from the client CA', async () => {
    const byToken = await kubeletGet(h.agent.port, logPath(), { token: KUBELET_TOKEN });
    assert.equal(byToken.status, 200);
    assert.deepEqual(lines(byToken.text), ['first line', 'second line', 'third line']);
    const byCert = await kubeletGet(h.agent.port, logPath(), { cert: h.api.tls.clientCert, key: h.api.tls.clientKey });
    assert.equal(byCert.status, 200);
    assert.deepEqual(lines(byCert.text), ['first line', 'second line', 'third line']);
  });

  it('honours tailLines, timestamps, limitBytes and sinceSeconds', async () => {
    const t = { token: KUBELET_TOKEN };
    const tail = await kubeletGet(h.agent.port, logPath('?tailLines=1'), t);
    assert.deepEqual(tail.text, 'third line\n');
    const stamped = await kubeletGet(h.agent.port, logPath('?tailLines=1&timestamps=true'), t);
    assert.match(stamped.text, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z third line\n$/);
    const limited = await kubeletGet(h.agent.port, logPath('?tailLines=2&limitBytes=8'), t);
    assert.equal(limited.text, 'second l');
    await new Promise((r) => setTimeout(r, 1100));
    await writeLog('fresh line');
    const since = await kubeletGet(h.agent.port, logPath('?sinceSeconds=1'), t);
    assert.deepEqual(lines(since.text), ['fresh line']);
    assert.equal((await kubeletGet(h.agent.port, logPath('?tailLines=-1'), t)).status, 400);
  });

  it('answers 404 for an unknown pod or container, and 400 for a container not started', async () => {
    const t = { token: KUBELET_TOKEN };
    assert.equal((await kubeletGet(h.agent.port, '/containerLogs/default/nope/app', t)).status, 404);
    assert.equal((await kubeletGet(h.agent.port, '/containerLogs/default/logger/nope', t)).status, 404);
    h.puller.unreachable = true;
    try {
      h.api.store.create('pods', podManifest('not-started', { containers: [{ name: 'app', image: 'registry.test/none:v1' }] }));
      await waitForPod(h.api, 'not-started', (p) => (p.status as { containerStatuses?: unknown[] } | undefined)?.containerStatuses !== undefined);
      const r = await kubeletGet(h.agent.port, '/containerLogs/default/not-started/app', t);
      assert.equal(r.status, 400);
      assert.match(r.text, /waiting to start/);
    } finally {
      h.puller.unreachable = false;
    }
  });

  it('follows the log until the pod is deleted', async () => {
    const received: string[] = [];
    let ended = false;
    const req = request({ host: '127.0.0.1', port: h.agent.port, path: logPath('?follow=true&tailLines=0'), rejectUnauthorized: false, agent: false, headers: { Authorization: `Bearer ${KUBELET_TOKEN}` } }, (res) => {
      res.setEncoding('utf8');
      res.on('data', (c: string) => received.push(...lines(c)));
      res.on('end', () => (ended = true));
    });
    req.end();
    await new Promise((r) => setTimeout(r, 200));
    await actorLog('followed one');
    await actorLog('followed two');
    const until = Date.now() + 5000;
    while (received.length < 2 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(received, ['followed one', 'followed two']);
    assert.equal(ended, false);
    h.api.store.delete('pods', 'default', 'logger', { gracePeriodSeconds: 30 });
    const deadline = Date.now() + 5000;
    while (!ended && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(ended, true, 'the follow ended with the container');
  });

  it('kubectl logs reads them through the API server (its client certificate)', { skip: KUBECTL ? false : 'kubectl is not installed' }, async () => {
    await until(() => !h.agent.pods().some((p) => p.name === 'logger'), 'the logger pod is gone', 10_000);
    h.api.store.create('pods', podManifest('logger2', { annotations: { 'wasmlet.dev/capabilities': 'logging' }, containers: [{ name: 'app', image: 'registry.test/logger:v1' }] }));
    await waitForPod(h.api, 'logger2', isReady);
    await actorLog('through the proxy', 'logger2');
    const r = await kubectl(h.api, cacheDir, 'logs', 'logger2');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(lines(r.stdout), ['through the proxy']);
    await writeLog('last one', 'logger2');
    const tail = await kubectl(h.api, cacheDir, 'logs', 'logger2', '--tail=1', '--timestamps');
    assert.match(tail.stdout, /^\S+Z last one\n$/);
  });
});
