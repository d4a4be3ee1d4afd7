import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { V1ConfigMap, V1Pod, V1Secret } from '@kubernetes/client-node';
import { expandVars, fieldValue, resolveEnv, type ConfigSource } from './env.ts';
import { isPodError } from './errors.ts';

const b64 = (s: string) => Buffer.from(s).toString('base64');
const source = (cms: Record<string, V1ConfigMap['data']>, secrets: Record<string, V1Secret['data']> = {}): ConfigSource => ({
  configMap: async (_ns, name) => (cms[name] ? { data: cms[name] } : undefined),
  secret: async (_ns, name) => (secrets[name] ? { data: secrets[name] } : undefined),
});
const pod: V1Pod = { metadata: { name: 'p', namespace: 'ns', uid: 'u-1', labels: { app: 'x', tier: 'db' }, annotations: { note: 'hi' } }, spec: { nodeName: 'n1', containers: [] } };
const placement = { nodeName: 'n1', nodeAddress: '10.0.0.5' };

describe('container env', () => {
  it('resolves envFrom, then env in order, with $(VAR) expansion', async () => {
    const env = await resolveEnv(
      pod,
      {
        name: 'app',
        envFrom: [{ configMapRef: { name: 'base' }, prefix: 'CM_' }, { secretRef: { name: 's' } }],
        env: [
          { name: 'A', value: 'a' },
          { name: 'B', value: '$(A)-$(CM_k)-$(NOPE)-$$(A)' },
          { name: 'K', valueFrom: { configMapKeyRef: { name: 'base', key: 'k' } } },
          { name: 'S', valueFrom: { secretKeyRef: { name: 's', key: 'pw' } } },
          { name: 'IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
          { name: 'A', value: 'replaced' },
        ],
      },
      source({ base: { k: 'v' } }, { s: { pw: b64('secret') } }),
      placement,
    );
    assert.deepEqual(env, { CM_k: 'v', pw: 'secret', A: 'replaced', B: 'a-v-$(NOPE)-$(A)', K: 'v', S: 'secret', IP: '10.0.0.5' });
  });

  it('reads downward API fields', () => {
    assert.equal(fieldValue(pod, 'metadata.name', placement), 'p');
    assert.equal(fieldValue(pod, 'metadata.uid', placement), 'u-1');
    assert.equal(fieldValue(pod, "metadata.labels['tier']", placement), 'db');
    assert.equal(fieldValue(pod, "metadata.annotations['none']", placement), '');
    assert.equal(fieldValue(pod, 'metadata.labels', placement), 'app="x"\ntier="db"');
    assert.equal(fieldValue(pod, 'spec.nodeName', placement), 'n1');
    assert.throws(() => fieldValue(pod, 'spec.nope', placement), (e: unknown) => isPodError(e) && e.fatal);
  });

  it('skips optional references and refuses missing required ones (retried, not fatal)', async () => {
    const env = await resolveEnv(pod, { name: 'app', env: [{ name: 'X', valueFrom: { configMapKeyRef: { name: 'gone', key: 'k', optional: true } } }] }, source({}), placement);
    assert.deepEqual(env, {});
    for (const env of [
      [{ name: 'X', valueFrom: { configMapKeyRef: { name: 'gone', key: 'k' } } }],
      [{ name: 'X', valueFrom: { configMapKeyRef: { name: 'base', key: 'missing' } } }],
      [{ name: 'X', valueFrom: { secretKeyRef: { name: 'gone', key: 'k' } } }],
    ]) {
      await assert.rejects(resolveEnv(pod, { name: 'app', env }, source({ base: { k: 'v' } }), placement), (e: unknown) => {
        assert.ok(isPodError(e));
        assert.equal(e.reason, 'CreateContainerConfigError');
        assert.equal(e.fatal, false);
        return true;
      });
    }
  });

  it('expands only defined variables', () => {
    assert.equal(expandVars('$(A) $(B) $$ $(A', { A: '1' }), '1 $(B) $ $(A');
  });
});
