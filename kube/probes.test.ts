import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { isPodError } from './errors.ts';
import { ContainerProbes, probeSpecs, runProbe, validateProbes, type ProbeAction, type ProbeKind, type ProbeSpec } from './probes.ts';

describe('probe specs', () => {
  const container = (probes: Record<string, unknown>) => ({ name: 'app', ports: [{ name: 'web', containerPort: 8080 }], ...probes }) as never;

  it('fills in Kubernetes\' defaults and resolves named ports against the pod\'s address', () => {
    const [r] = probeSpecs(container({ readinessProbe: { httpGet: { path: 'healthz', port: 'web', httpHeaders: [{ name: 'X-A', value: '1' }] } } }), '127.10.0.2');
    assert.deepEqual(r, {
      kind: 'readiness',
      action: { type: 'http', scheme: 'http', host: '127.10.0.2', port: 8080, path: '/healthz', headers: [['X-A', '1']] },
      initialDelayMs: 0,
      periodMs: 10_000,
      timeoutMs: 1000,
      successThreshold: 1,
      failureThreshold: 3,
    });
    const [l] = probeSpecs(container({ livenessProbe: { tcpSocket: { port: 9000 }, periodSeconds: 2, timeoutSeconds: 3, failureThreshold: 1, initialDelaySeconds: 4 } }), '10.0.0.1');
    assert.deepEqual([l!.action, l!.periodMs, l!.timeoutMs, l!.failureThreshold, l!.initialDelayMs], [{ type: 'tcp', host: '10.0.0.1', port: 9000 }, 2000, 3000, 1, 4000]);
  });

  it('refuses exec and grpc probes, other hosts, unknown port names and bad fields, naming them', () => {
    const refused = (probes: Record<string, unknown>, pattern: RegExp) =>
      assert.throws(() => probeSpecs(container(probes), '10.0.0.1'), (e) => isPodError(e) && e.fatal && e.reason === 'UnsupportedProbe' && pattern.test(e.message), JSON.stringify(probes));
    refused({ livenessProbe: { exec: { command: ['cat', '/tmp/healthy'] } } }, /exec probes are not supported for wasm workloads/);
    refused({ readinessProbe: { grpc: { port: 9000 } } }, /grpc probes are not supported/);
    refused({ readinessProbe: { httpGet: { host: '169.254.169.254', port: 80 } } }, /only the pod's own address/);
    refused({ readinessProbe: { tcpSocket: { host: 'example.com', port: 80 } } }, /only the pod's own address/);
    refused({ startupProbe: { httpGet: { port: 'admin' } } }, /no container port is named "admin"/);
    refused({ livenessProbe: { httpGet: { port: 80 }, successThreshold: 2 } }, /successThreshold must be 1/);
    refused({ readinessProbe: { httpGet: { port: 80 }, periodSeconds: 0 } }, /periodSeconds must be an integer >= 1/);
    refused({ readinessProbe: {} }, /names no action/);
    // Before the pod has an address only the host cannot be checked.
    assert.doesNotThrow(() => validateProbes(container({ readinessProbe: { httpGet: { host: '10.9.9.9', port: 80 } } })));
    assert.throws(() => validateProbes(container({ livenessProbe: { exec: { command: ['x'] } } })), /exec/);
  });
});

describe('probe actions', () => {
  let server: Server;
  let port: number;
  let status = 200;
  let delayMs = 0;
  let seen: { url: string; headers: IncomingHttpHeaders }[] = [];

  before(async () => {
    server = createServer((req, res) => {
      seen.push({ url: req.url ?? '', headers: req.headers });
      setTimeout(() => {
        res.writeHead(status);
        res.end('x'.repeat(50_000));
      }, delayMs);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    port = (server.address() as AddressInfo).port;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  const http = (path = '/healthz'): ProbeAction => ({ type: 'http', scheme: 'http', host: '127.0.0.1', port, path, headers: [['X-Probe', 'yes']] });

  it('httpGet: 2xx and 3xx pass, others fail with the status; path and headers are sent', async () => {
    seen = [];
    for (const [code, ok] of [[200, true], [302, true], [404, false], [500, false]] as const) {
      status = code;
      const r = await runProbe(http(), 1000);
      assert.equal(r.ok, ok, String(code));
      if (!ok) assert.equal(r.message, `HTTP probe failed with statuscode: ${code}`);
    }
    assert.equal(seen[0]!.url, '/healthz');
    assert.equal(seen[0]!.headers['x-probe'], 'yes');
    assert.equal(seen[0]!.headers['user-agent'], 'kube-probe/1.32');
    status = 200;
  });

  it('httpGet: a refused connection and a slow answer fail as the kubelet words them', async () => {
    const refused = await runProbe({ ...http(), port: 1 } as ProbeAction, 1000);
    assert.deepEqual(refused, { ok: false, message: 'Get "http://127.0.0.1:1/healthz": dial tcp 127.0.0.1:1: connect: connection refused' });
    delayMs = 500;
    const slow = await runProbe(http(), 100);
    delayMs = 0;
    assert.equal(slow.ok, false);
    assert.match(slow.message, /context deadline exceeded/);
  });

  it('tcpSocket: passes when something listens, fails when nothing does', async () => {
    assert.deepEqual(await runProbe({ type: 'tcp', host: '127.0.0.1', port }, 1000), { ok: true, message: '' });
    assert.deepEqual(await runProbe({ type: 'tcp', host: '127.0.0.1', port: 1 }, 1000), { ok: false, message: 'dial tcp 127.0.0.1:1: connect: connection refused' });
  });

  function spec(kind: ProbeKind, over: Partial<ProbeSpec> = {}): ProbeSpec {
    return { kind, action: http(), initialDelayMs: 0, periodMs: 20, timeoutMs: 500, successThreshold: 1, failureThreshold: 2, ...over };
  }

  function record(specs: ProbeSpec[]) {
    const log: string[] = [];
    const probes = new ContainerProbes(specs, {
      ready: (r) => log.push(`ready ${r}`),
      started: () => log.push('started'),
      unhealthy: (k) => log.push(`unhealthy ${k}`),
      failed: (k) => log.push(`failed ${k}`),
    });
    return { probes, log };
  }

  const waitFor = async (cond: () => boolean, what: string) => {
    const end = Date.now() + 5000;
    while (!cond()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  };

  it('readiness: ready after successThreshold successes, unready after failureThreshold failures', async () => {
    status = 200;
    const { probes, log } = record([spec('readiness', { successThreshold: 2 })]);
    probes.start();
    await waitFor(() => log.includes('ready true'), 'ready');
    assert.ok(probes.attempts >= 2, 'two successes were needed');
    status = 500;
    await waitFor(() => log.includes('ready false'), 'unready');
    assert.deepEqual(log.filter((l) => l !== 'unhealthy readiness'), ['ready true', 'ready false']);
    assert.equal(log.filter((l) => l === 'unhealthy readiness').length, 2, 'each failure is reported');
    status = 200;
    await waitFor(() => log.filter((l) => l === 'ready true').length === 2, 'ready again');
    probes.stop();
    const n = probes.attempts;
    await new Promise((r) => setTimeout(r, 80));
    assert.equal(probes.attempts, n, 'nothing runs once stopped');
  });

  it('liveness: fails after failureThreshold failures in a row; successes in between reset the count', async () => {
    status = 500;
    const { probes, log } = record([spec('liveness', { failureThreshold: 3 })]);
    probes.start();
    await waitFor(() => log.filter((l) => l === 'unhealthy liveness').length === 2, 'two failures');
    status = 200;
    await new Promise((r) => setTimeout(r, 60));
    status = 500;
    await waitFor(() => log.includes('failed liveness'), 'liveness failure');
    assert.ok(log.filter((l) => l === 'unhealthy liveness').length >= 5, log.join(','));
    probes.stop();
    status = 200;
  });

  it('startup gates the others: they run only once it passed; failing it kills', async () => {
    status = 500;
    const { probes, log } = record([spec('startup', { failureThreshold: 100 }), spec('readiness'), spec('liveness')]);
    probes.start();
    await waitFor(() => log.filter((l) => l === 'unhealthy startup').length >= 3, 'startup failing');
    assert.ok(!log.some((l) => l.includes('readiness') || l.includes('liveness')), 'no other probe ran');
    status = 200;
    await waitFor(() => log.includes('ready true'), 'ready after startup');
    assert.ok(log.indexOf('started') < log.indexOf('ready true'));
    probes.stop();

    status = 500;
    const killed = record([spec('startup', { failureThreshold: 2 })]);
    killed.probes.start();
    await waitFor(() => killed.log.includes('failed startup'), 'startup failure');
    killed.probes.stop();
    status = 200;
  });
});
