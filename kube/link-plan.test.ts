import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { LinkSpec } from './annotations.ts';
import { planLinks } from './link-plan.ts';

const spec = (contract: string, values: Record<string, string> = {}, extra: Partial<LinkSpec> = {}): LinkSpec => ({ contract, linkName: 'default', values, source: 'test', ...extra });

describe('link plan of a container', () => {
  it('makes the first port the default HTTP server link, with env as values', () => {
    const links = planLinks([], { name: 'app', ports: [{ containerPort: 8080 }, { containerPort: 9090 }] }, { A: '1', ADDRESS: '0.0.0.0' }, '127.10.0.7');
    assert.deepEqual(links, [{ contract: 'wasmlet:httpserver', linkName: 'default', values: { A: '1', ADDRESS: '127.10.0.7', PORT: '8080' }, source: 'containerPort' }]);
  });

  it('listens on the containerPort (a hostPort is forwarded, not listened on), and feeds a named HTTP link from the port of the same name', () => {
    const links = planLinks(
      [spec('wasmlet:httpserver', {}, { linkName: 'admin' })],
      { name: 'app', ports: [{ name: 'web', containerPort: 80, hostPort: 8081 }, { name: 'admin', containerPort: 9000 }] },
      {},
      '10.1.0.2',
    );
    const by = Object.fromEntries(links.map((l) => [l.linkName, `${l.values.ADDRESS}:${l.values.PORT}`]));
    assert.deepEqual(by, { admin: '10.1.0.2:9000', default: '10.1.0.2:80' });
  });

  it('refuses an annotation that would listen on another address than the pod\'s', () => {
    assert.throws(() => planLinks([spec('wasmlet:httpserver', { ADDRESS: '0.0.0.0' })], { name: 'app', ports: [{ containerPort: 80 }] }, {}, '10.1.0.2'), (e: Error & { reason?: string }) => e.reason === 'InvalidCapabilityAnnotation' && /own address \(10\.1\.0\.2\)/.test(e.message));
    assert.equal(planLinks([spec('wasmlet:httpserver', { ADDRESS: '10.1.0.2' })], { name: 'app', ports: [{ containerPort: 80 }] }, {}, '10.1.0.2')[0]!.values.ADDRESS, '10.1.0.2');
  });

  it('lets annotation values win over env and ports', () => {
    const [kv, http] = planLinks([spec('wasmlet:keyvalue', { URL: 'redis://x' }), spec('wasmlet:httpserver', { PORT: '7000' })], { name: 'app', ports: [{ containerPort: 8080 }] }, { URL: 'from-env', PORT: '1' }, '10.0.0.1');
    assert.deepEqual(kv!.values, { URL: 'redis://x', PORT: '1' });
    assert.equal(http!.values.PORT, '7000');
  });

  it('applies container-specific entries only to their container, over pod-wide ones', () => {
    const specs = [spec('wasmlet:keyvalue', { URL: 'all' }), spec('wasmlet:keyvalue', { URL: 'b only' }, { container: 'b' }), spec('wasmlet:logging', {}, { container: 'b' })];
    assert.deepEqual(planLinks(specs, { name: 'a' }, {}, '10.0.0.1').map((l) => [l.contract, l.values.URL]), [['wasmlet:keyvalue', 'all']]);
    assert.deepEqual(planLinks(specs, { name: 'b' }, {}, '10.0.0.1').map((l) => [l.contract, l.values.URL]), [['wasmlet:keyvalue', 'b only'], ['wasmlet:logging', undefined]]);
  });

  it('ignores UDP ports and adds no HTTP link without a TCP port', () => {
    assert.deepEqual(planLinks([], { name: 'app', ports: [{ containerPort: 53, protocol: 'UDP' }] }, {}, '10.0.0.1'), []);
  });
});
