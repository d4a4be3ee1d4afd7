/**
 * WASI pods (Krustlet's wasi-provider on wasmlet): the hello-world-wasi demo through kubectl
 * (apply, wait for Succeeded, logs, delete), Krustlet's own hello-world.wasm, exit codes →
 * Succeeded/Failed, restartPolicy with backoff, init containers in order, volumes (ConfigMap
 * items, Secret, emptyDir, hostPath, downward API, projected) as the only reachable files, and a
 * looping program stopped when its pod is deleted.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { appendLineWat, catFilesWat, failOnceWat, loopForeverWat, openWat, printAndExitWat, wasiProgram } from './helpers/wasi-programs.ts';
import {
  KUBECTL,
  kubectl,
  KUBELET_TOKEN,
  phaseIs,
  podManifest,
  startKubeletHarness,
  startTestScheduler,
  statusOf,
  waitForGone,
  waitForPod,
  type KubeletHarness,
} from './helpers/kubelet-harness.ts';
import { until } from './helpers/wait.ts';

const repo = new URL('../', import.meta.url);
const fixtures = new URL('../shared/fixtures/', repo);

/** The log lines of a container, read from the kubelet API with the test token. */
async function logLines(h: KubeletHarness, pod: string, container = 'app'): Promise<string[]> {
  const { request } = await import('node:https');
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: h.agent.port, path: `/containerLogs/default/${pod}/${container}`, rejectUnauthorized: false, agent: false, headers: { Authorization: `Bearer ${KUBELET_TOKEN}` } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => (res.statusCode === 200 ? resolve(text.split('\n').slice(0, -1)) : reject(new Error(`${res.statusCode}: ${text}`))));
    });
    req.on('error', reject);
    req.end();
  });
}

const terminatedOf = (p: Parameters<typeof statusOf>[0], i = 0) => statusOf(p).containerStatuses?.[i]?.state?.terminated;

describe('node agent: WASI pods', () => {
  let h: KubeletHarness;
  let dir: string;
  let stopScheduler: () => void;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'wasi-pods-'));
    // hostPath is off by default; these pods may use directories under this test's own.
    h = await startKubeletHarness({ agent: { allowHostPath: [dir] } });
    stopScheduler = startTestScheduler(h.api);
    h.puller.set('127.0.0.1:5000/wasmlet/hello-world-wasi:v1', await readFile(new URL('demos/hello-world-wasi/hello-world-wasi.wasm', repo)));
    h.puller.set('registry.test/krustlet-hello:v1', await readFile(new URL('krustlet/hello-world.wasm', fixtures)));
  });
  after(async () => {
    stopScheduler?.();
    await h?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('runs the hello-world-wasi demo with kubectl: apply, wait for Succeeded, logs, delete', { skip: KUBECTL ? false : 'kubectl is not installed' }, async () => {
    const manifest = new URL('demos/hello-world-wasi/k8s.yaml', repo).pathname;
    const cache = join(dir, 'kubectl-cache');
    const applied = await kubectl(h.api, cache, 'apply', '-f', manifest);
    assert.equal(applied.code, 0, applied.stderr);
    const waited = await kubectl(h.api, cache, 'wait', '--for=jsonpath={.status.phase}=Succeeded', 'pod/hello-world-wasi', '--timeout=30s');
    assert.equal(waited.code, 0, waited.stderr);
    const logs = await kubectl(h.api, cache, 'logs', 'hello-world-wasi');
    assert.equal(logs.code, 0, logs.stderr);
    // Exactly what demos/hello-world-wasi/README.md promises.
    assert.deepEqual(logs.stdout.split('\n'), [
      'hello from stdout!',
      'hello from stderr!',
      'FOO=bar',
      'POD_NAME=hello-world-wasi',
      'CONFIG_MAP_VAL=cool stuff',
      'Args are: ["hello-world-wasi", "this", "is", "the", "args"]',
      '/mnt/config/myval: cool stuff',
      '',
    ]);
    const pod = h.api.store.get('pods', 'default', 'hello-world-wasi')!;
    assert.deepEqual([terminatedOf(pod)?.exitCode, terminatedOf(pod)?.reason], [0, 'Completed']);
    assert.match(statusOf(pod).containerStatuses![0].containerID, /^wasmlet:\/\/wasi-[0-9a-f]+$/);
    const deleted = await kubectl(h.api, cache, 'delete', '-f', manifest, '--timeout=30s');
    assert.equal(deleted.code, 0, deleted.stderr);
    assert.equal(h.api.store.get('pods', 'default', 'hello-world-wasi'), undefined);
  });

  it("runs Krustlet's hello-world.wasm (wasi_unstable) and logs Hello, world!", async () => {
    h.api.store.create('pods', podManifest('krustlet-hello', { restartPolicy: 'Never', containers: [{ name: 'app', image: 'registry.test/krustlet-hello:v1' }] }));
    const pod = await waitForPod(h.api, 'krustlet-hello', phaseIs('Succeeded'));
    assert.deepEqual(await logLines(h, 'krustlet-hello'), ['Hello, world!']);
    assert.equal(terminatedOf(pod)?.exitCode, 0);
    assert.equal(statusOf(pod).conditions?.find((c) => c.type === 'Ready')?.reason, 'PodCompleted');
  });

  it('fails the pod with the exit code of a program that exits non-zero (restartPolicy Never)', async () => {
    h.puller.set('registry.test/exit3:v1', await wasiProgram(printAndExitWat({ stdout: ['working'], stderr: ['it broke'], code: 3 })));
    h.api.store.create('pods', podManifest('exit3', { restartPolicy: 'Never', containers: [{ name: 'app', image: 'registry.test/exit3:v1' }] }));
    const pod = await waitForPod(h.api, 'exit3', phaseIs('Failed'));
    assert.deepEqual([terminatedOf(pod)?.exitCode, terminatedOf(pod)?.reason], [3, 'Error']);
    assert.equal(statusOf(pod).containerStatuses![0].restartCount, 0);
    assert.deepEqual(await logLines(h, 'exit3'), ['working', 'it broke']);
  });

  it('restarts a failing program with backoff under OnFailure until it succeeds', async () => {
    const state = join(dir, 'fail-once');
    await mkdir(state);
    h.puller.set('registry.test/fail-once:v1', await wasiProgram(failOnceWat(3, 'marker')));
    h.api.store.create(
      'pods',
      podManifest('fail-once', {
        restartPolicy: 'OnFailure',
        volumes: [{ name: 'state', hostPath: { path: state, type: 'Directory' } }],
        containers: [{ name: 'app', image: 'registry.test/fail-once:v1', volumeMounts: [{ name: 'state', mountPath: '/state' }] }],
      }),
    );
    const pod = await waitForPod(h.api, 'fail-once', phaseIs('Succeeded'));
    const cs = statusOf(pod).containerStatuses![0];
    assert.equal(cs.restartCount, 1);
    assert.equal(cs.lastState.terminated?.exitCode, 1);
    assert.equal(cs.state.terminated?.exitCode, 0);
  });

  it('keeps restarting under Always, with growing backoff, even after exit 0', async () => {
    h.puller.set('registry.test/ok:v1', await wasiProgram(printAndExitWat({ stdout: ['ran'], code: 0 })));
    h.api.store.create('pods', podManifest('always', { restartPolicy: 'Always', containers: [{ name: 'app', image: 'registry.test/ok:v1' }] }));
    const pod = await waitForPod(h.api, 'always', (p) => (statusOf(p).containerStatuses?.[0]?.restartCount ?? 0) >= 2, 15_000);
    assert.equal(statusOf(pod).phase, 'Running');
    const waiting = await waitForPod(h.api, 'always', (p) => statusOf(p).containerStatuses?.[0]?.state?.waiting?.reason === 'CrashLoopBackOff');
    assert.equal(statusOf(waiting).containerStatuses![0].lastState.terminated?.exitCode, 0);
    h.api.store.delete('pods', 'default', 'always', { gracePeriodSeconds: 30 });
    await waitForGone(h.api, 'always');
  });

  it('runs init containers first, in order, and the main container after them', async () => {
    h.puller.set('registry.test/init-1:v1', await wasiProgram(appendLineWat(3, 'order', 'init-1')));
    h.puller.set('registry.test/init-2:v1', await wasiProgram(appendLineWat(3, 'order', 'init-2')));
    h.puller.set('registry.test/cat-order:v1', await wasiProgram(catFilesWat([{ fd: 3, path: 'order' }])));
    const mount = { volumeMounts: [{ name: 'shared', mountPath: '/shared' }] };
    h.api.store.create(
      'pods',
      podManifest('init-order', {
        restartPolicy: 'Never',
        volumes: [{ name: 'shared', emptyDir: {} }],
        initContainers: [
          { name: 'first', image: 'registry.test/init-1:v1', ...mount },
          { name: 'second', image: 'registry.test/init-2:v1', ...mount },
        ],
        containers: [{ name: 'app', image: 'registry.test/cat-order:v1', ...mount }],
      }),
    );
    const pod = await waitForPod(h.api, 'init-order', phaseIs('Succeeded'));
    assert.deepEqual(await logLines(h, 'init-order'), ['order: init-1', 'init-2', '']);
    assert.deepEqual(await logLines(h, 'init-order', 'first'), ['init-1']);
    const inits = statusOf(pod).initContainerStatuses!;
    assert.deepEqual(inits.map((c) => [c.name, c.state.terminated?.exitCode]), [['first', 0], ['second', 0]]);
    assert.equal(statusOf(pod).conditions?.find((c) => c.type === 'Initialized')?.status, 'True');
  });

  it('fails the pod without running its containers when an init container fails under Never', async () => {
    h.puller.set('registry.test/init-fail:v1', await wasiProgram(printAndExitWat({ stderr: ['no'], code: 4 })));
    h.api.store.create(
      'pods',
      podManifest('init-fail', { restartPolicy: 'Never', initContainers: [{ name: 'setup', image: 'registry.test/init-fail:v1' }], containers: [{ name: 'app', image: 'registry.test/ok:v1' }] }),
    );
    const pod = await waitForPod(h.api, 'init-fail', phaseIs('Failed'));
    assert.equal(statusOf(pod).initContainerStatuses![0].state.terminated?.exitCode, 4);
    assert.equal(statusOf(pod).containerStatuses![0].started, false);
    assert.equal(statusOf(pod).conditions?.find((c) => c.type === 'Initialized')?.status, 'False');
    await assert.rejects(logLines(h, 'init-fail', 'app'), /400/);
  });

  it('mounts ConfigMap items, Secrets, downward API and projected volumes as files', async () => {
    h.api.store.create('configmaps', { metadata: { name: 'files', namespace: 'default' }, data: { 'a.conf': 'alpha', other: 'not mounted' } });
    h.api.store.create('secrets', { metadata: { name: 'creds', namespace: 'default' }, data: { password: Buffer.from('hunter2').toString('base64') } });
    h.puller.set(
      'registry.test/cat-all:v1',
      await wasiProgram(
        catFilesWat([
          { fd: 3, path: 'renamed.conf' },
          { fd: 4, path: 'password' },
          { fd: 5, path: 'podname' },
          { fd: 6, path: 'a.conf' },
          { fd: 6, path: 'labels' },
        ]),
      ),
    );
    h.api.store.create(
      'pods',
      podManifest('volumes', {
        restartPolicy: 'Never',
        labels: { team: 'wasm' },
        volumes: [
          { name: 'cm', configMap: { name: 'files', items: [{ key: 'a.conf', path: 'renamed.conf' }] } },
          { name: 'secret', secret: { secretName: 'creds' } },
          { name: 'downward', downwardAPI: { items: [{ path: 'podname', fieldRef: { fieldPath: 'metadata.name' } }] } },
          { name: 'projected', projected: { sources: [{ configMap: { name: 'files', items: [{ key: 'a.conf', path: 'a.conf' }] } }, { downwardAPI: { items: [{ path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } }] } }] } },
        ],
        containers: [
          {
            name: 'app',
            image: 'registry.test/cat-all:v1',
            volumeMounts: [
              { name: 'cm', mountPath: '/etc/app' },
              { name: 'secret', mountPath: '/secret', readOnly: true },
              { name: 'downward', mountPath: '/info' },
              { name: 'projected', mountPath: '/all' },
            ],
          },
        ],
      }),
    );
    await waitForPod(h.api, 'volumes', phaseIs('Succeeded'));
    assert.deepEqual(await logLines(h, 'volumes'), ['renamed.conf: alpha', 'password: hunter2', 'podname: volumes', 'a.conf: alpha', 'labels: app="volumes"', 'team="wasm"']);
  });

  it('keeps a program inside its mounts: nothing outside them can be opened', async () => {
    const secretDir = join(dir, 'outside');
    await mkdir(join(secretDir, 'inside'), { recursive: true });
    await writeFile(join(secretDir, 'secret.txt'), 'not for the guest');
    await writeFile(join(secretDir, 'inside', 'ok.txt'), 'fine');
    const cases: [string, string, string][] = [
      ['open-inside', 'ok.txt', 'Succeeded'],
      ['open-parent', '../secret.txt', 'Failed'],
      ['open-absolute', '/etc/passwd', 'Failed'],
      ['open-climb', 'sub/../../secret.txt', 'Failed'],
    ];
    for (const [name, path] of cases) {
      h.puller.set(`registry.test/${name}:v1`, await wasiProgram(openWat(path)));
      h.api.store.create(
        'pods',
        podManifest(name, {
          restartPolicy: 'Never',
          volumes: [{ name: 'data', hostPath: { path: join(secretDir, 'inside') } }],
          containers: [{ name: 'app', image: `registry.test/${name}:v1`, volumeMounts: [{ name: 'data', mountPath: '/data' }] }],
        }),
      );
    }
    for (const [name, path, phase] of cases) {
      const pod = await waitForPod(h.api, name, (p) => ['Succeeded', 'Failed'].includes(statusOf(p).phase ?? ''));
      assert.equal(statusOf(pod).phase, phase, `${path}: exit ${terminatedOf(pod)?.exitCode}`);
    }
  });

  it('stops a program that loops forever when its pod is deleted', async () => {
    h.puller.set('registry.test/spin:v1', await wasiProgram(loopForeverWat()));
    h.api.store.create('pods', podManifest('spin', { containers: [{ name: 'app', image: 'registry.test/spin:v1' }] }));
    await waitForPod(h.api, 'spin', (p) => statusOf(p).phase === 'Running' && statusOf(p).containerStatuses?.[0]?.ready === true);
    await until(async () => (await logLines(h, 'spin')).includes('started'), 'the program printed');
    const started = Date.now();
    h.api.store.delete('pods', 'default', 'spin', { gracePeriodSeconds: 30 });
    await waitForGone(h.api, 'spin', 10_000);
    assert.ok(Date.now() - started < 5000, `stopped in ${Date.now() - started} ms, not after the grace period`);
    await until(() => !h.agent.pods().some((p) => p.name === 'spin'), 'pod forgotten');
  });
});
