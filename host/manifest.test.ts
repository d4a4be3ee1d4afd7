import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isManifestError } from './errors.ts';
import { parseManifest } from './manifest.ts';

const wascc = `
labels:
  sample: "wascc kvcounter"
actors:
  - ./kvcounter.wasm
capabilities:
  - path: ./libwascc_httpsrv.so
  - path: ./libredis_provider.so
bindings:
  - actor: "MASCXFM4R6X63UD5MSCDZYCJNPBVSIU6RKMXUPXRKAOSBQ6UY3VT3NPZ"
    capability: "wascc:http_server"
    values:
      PORT: 8081
  - actor: "MASCXFM4R6X63UD5MSCDZYCJNPBVSIU6RKMXUPXRKAOSBQ6UY3VT3NPZ"
    capability: "wascc:keyvalue"
    binding: ""
    values:
      URL: redis://127.0.0.1:6379
`;

describe('manifest', () => {
  it('accepts a waSCC host manifest as-is', () => {
    const plan = parseManifest(wascc, '/m');
    assert.equal(plan.format, 'wascc');
    assert.deepEqual(plan.labels, { sample: 'wascc kvcounter' });
    assert.deepEqual(plan.actors, [{ path: '/m/kvcounter.wasm', config: {} }]);
    assert.deepEqual(plan.links, [
      { actor: 'MASCXFM4R6X63UD5MSCDZYCJNPBVSIU6RKMXUPXRKAOSBQ6UY3VT3NPZ', contract: 'wasmlet:httpserver', linkName: 'default', values: { PORT: '8081' } },
      { actor: 'MASCXFM4R6X63UD5MSCDZYCJNPBVSIU6RKMXUPXRKAOSBQ6UY3VT3NPZ', contract: 'wasmlet:keyvalue', linkName: 'default', values: { URL: 'redis://127.0.0.1:6379' } },
    ]);
    assert.deepEqual(
      plan.providers.map((p) => [p.contract, p.linkName, p.nativePath]),
      [
        ['wasmlet:httpserver', 'default', '/m/libwascc_httpsrv.so'],
        ['wasmlet:keyvalue', 'default', '/m/libredis_provider.so'],
      ],
    );
  });

  it('reads a wasmlet manifest with limits, config, provider options and named links', () => {
    const plan = parseManifest(
      `apiVersion: wasmlet/v1
kind: Host
host: { workers: 3, deadlineMs: 900, maxConcurrency: 2, maxMemoryMiB: 128, issuers: [AAGRUXXTGSP4C27RWPTMCHCJF56JD53EQPA2R7RPC5VI4E274KPRMMJ5] }
actors:
  - { path: a.wasm, maxInstances: 2, maxConcurrency: 1, maxMemoryMiB: 32, deadlineMs: 100, config: { GREETING: hi, N: 3 } }
providers:
  - { contract: wascc:http_server, options: { maxBodyBytes: 1024 } }
  - { contract: wasmlet:keyvalue, linkName: cache }
links:
  - { actor: My Actor, contract: wascc:keyvalue, linkName: cache, values: { URL: "redis://r:1" } }
  - { actor: My Actor, contract: wasmlet:httpserver, values: { PORT: 8080 } }
`,
      '/base',
    );
    assert.equal(plan.format, 'wasmlet');
    assert.equal(plan.host.workers, 3);
    assert.equal(plan.host.deadlineMs, 900);
    assert.deepEqual(plan.host.issuers, ['AAGRUXXTGSP4C27RWPTMCHCJF56JD53EQPA2R7RPC5VI4E274KPRMMJ5']);
    assert.equal(plan.host.maxConcurrency, 2);
    assert.equal(plan.host.maxMemoryMiB, 128);
    assert.deepEqual(plan.actors, [{ path: '/base/a.wasm', maxInstances: 2, maxConcurrency: 1, maxMemoryMiB: 32, deadlineMs: 100, config: { GREETING: 'hi', N: '3' } }]);
    assert.deepEqual(
      plan.providers.map((p) => [p.contract, p.linkName, p.options]),
      [
        ['wasmlet:httpserver', 'default', { maxBodyBytes: 1024 }],
        ['wasmlet:keyvalue', 'cache', {}],
      ],
    );
    assert.deepEqual(plan.links[0], { actor: 'My Actor', contract: 'wasmlet:keyvalue', linkName: 'cache', values: { URL: 'redis://r:1' } });
  });

  for (const [name, text, pattern] of [
    ['not YAML', 'actors: [a\n  b: c: d', /not valid YAML/],
    ['not a mapping', '- a\n- b', /must be a mapping/],
    ['a binding without capability', 'bindings:\n  - actor: M\n', /bindings\.0\.capability/],
    ['an unknown field in a wasmlet manifest', 'apiVersion: wasmlet/v1\nkind: Host\nactorz: []\n', /actorz/],
    ['a bad host option', 'apiVersion: wasmlet/v1\nkind: Host\nhost: { workers: -1 }\n', /host\.workers/],
    ['a zero memory limit', 'apiVersion: wasmlet/v1\nkind: Host\nactors: [{ path: a.wasm, maxMemoryMiB: 0 }]\n', /actors\.0\.maxMemoryMiB/],
    ['a fractional concurrency', 'apiVersion: wasmlet/v1\nkind: Host\nactors: [{ path: a.wasm, maxConcurrency: 1.5 }]\n', /actors\.0\.maxConcurrency/],
    ['a wrong apiVersion', 'apiVersion: v2\nkind: Host\n', /apiVersion/],
  ] as const) {
    it(`refuses ${name} with a message naming the problem`, () => {
      assert.throws(() => parseManifest(text, '/'), (e) => isManifestError(e) && pattern.test(e.message));
    });
  }
});
