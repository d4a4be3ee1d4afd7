import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { actorLimits, MAX_CONCURRENCY_ANNOTATION, parseQuantity } from './actor-limits.ts';
import { isPodError } from './errors.ts';

describe('actor limits from a pod', () => {
  it('reads Kubernetes memory quantities', () => {
    assert.equal(parseQuantity('64Mi'), 64 * 2 ** 20);
    assert.equal(parseQuantity('1.5Gi'), 1.5 * 2 ** 30);
    assert.equal(parseQuantity('100M'), 100e6);
    assert.equal(parseQuantity('128974848'), 128974848);
    assert.equal(parseQuantity('129e6'), 129e6);
    assert.equal(parseQuantity('.5Ki'), 512);
    assert.equal(parseQuantity('500m'), 0.5);
    for (const bad of ['', 'Mi', '64 MB', '-1Mi', '1.2.3', '10Xi', '1e']) assert.equal(parseQuantity(bad), undefined, bad);
  });

  it('takes maxConcurrency from the annotation and maxMemoryMiB from resources.limits.memory', () => {
    assert.deepEqual(actorLimits(undefined, { name: 'app' }), {});
    assert.deepEqual(actorLimits({ [MAX_CONCURRENCY_ANNOTATION]: '2' }, { name: 'app', resources: { limits: { memory: '100M' } } }), { maxConcurrency: 2, maxMemoryMiB: 95 });
  });

  it('refuses a malformed annotation or memory limit, naming it', () => {
    const refused = (fn: () => unknown, reason: string, pattern: RegExp) =>
      assert.throws(fn, (e: unknown) => isPodError(e) && e.fatal && e.reason === reason && pattern.test(e.message));
    for (const v of ['0', '-1', 'two', '1.5', '2000']) {
      refused(() => actorLimits({ [MAX_CONCURRENCY_ANNOTATION]: v }, { name: 'app' }), 'InvalidCapabilityAnnotation', /wasmlet\.dev\/max-concurrency: must be a whole number from 1 to 1024/);
    }
    refused(() => actorLimits({}, { name: 'app', resources: { limits: { memory: 'lots' } } }), 'UnsupportedPodSpec', /container app: resources\.limits\.memory "lots" is not a quantity/);
    refused(() => actorLimits({}, { name: 'app', resources: { limits: { memory: '512Ki' } } }), 'UnsupportedPodSpec', /below 1Mi/);
  });
});
