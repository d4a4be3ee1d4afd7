import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isOptionsError } from '../host/index.ts';
import { parseNodeAgentOptions } from './options.ts';

describe('node agent options', () => {
  it('fills in the documented defaults', () => {
    const o = parseNodeAgentOptions({ nodeName: 'node-1', address: '10.1.2.3' });
    assert.equal(o.port, 10250);
    assert.equal(o.maxPods, 110);
    assert.equal(o.hostname, 'node-1');
    assert.equal(o.bindAddress, '10.1.2.3');
    assert.deepEqual(o.crashLoopBackoff, { baseMs: 10_000, maxMs: 300_000 });
    assert.deepEqual(o.taints.map((t) => `${t.key}=${t.value}:${t.effect}`), ['wasmlet.dev/arch=wasm32-wasmlet:NoSchedule', 'wasmlet.dev/arch=wasm32-wasmlet:NoExecute']);
    assert.match(o.dataDir, /wasmlet-kubelet-node-1$/);
  });

  it('refuses bad options, naming each problem', () => {
    assert.throws(() => parseNodeAgentOptions({ nodeName: 'Bad_Name' }), (e: unknown) => isOptionsError(e) && /nodeName/.test((e as Error).message));
    assert.throws(() => parseNodeAgentOptions({ nodeName: 'n', address: 'not-an-ip' }), /address/);
    assert.throws(() => parseNodeAgentOptions({ nodeName: 'n', tlsCert: '-----BEGIN CERTIFICATE-----' }), /tlsCert and tlsKey/);
    assert.throws(() => parseNodeAgentOptions({ nodeName: 'n', crashLoopBackoff: { baseMs: 10, maxMs: 5 } }), /baseMs must not exceed maxMs/);
    assert.throws(() => parseNodeAgentOptions({ nodeName: 'n', surprise: 1 }), /surprise|Unrecognized/);
  });
});
