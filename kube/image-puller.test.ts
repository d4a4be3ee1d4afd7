import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { V1Pod } from '@kubernetes/client-node';
import type { ConfigSource } from './env.ts';
import { pullCredentials, pullPolicyOf } from './image-puller.ts';

describe('image pulls of a pod', () => {
  it('defaults the pull policy as the API server does', () => {
    assert.equal(pullPolicyOf({ name: 'a', image: 'r/app' }), 'Always');
    assert.equal(pullPolicyOf({ name: 'a', image: 'r:5000/app:latest' }), 'Always');
    assert.equal(pullPolicyOf({ name: 'a', image: 'r:5000/app:v1' }), 'IfNotPresent');
    assert.equal(pullPolicyOf({ name: 'a', image: 'r/app@sha256:00' }), 'IfNotPresent');
    assert.equal(pullPolicyOf({ name: 'a', image: 'r/app:v1', imagePullPolicy: 'Never' }), 'Never');
  });

  it('reads credentials from dockerconfigjson and dockercfg secrets, skipping missing or broken ones', async () => {
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    const secrets: Record<string, { type: string; data: Record<string, string> }> = {
      modern: { type: 'kubernetes.io/dockerconfigjson', data: { '.dockerconfigjson': b64(JSON.stringify({ auths: { 'a.io': { username: 'u', password: 'p' } } })) } },
      legacy: { type: 'kubernetes.io/dockercfg', data: { '.dockercfg': b64(JSON.stringify({ 'b.io': { auth: b64('x:y') } })) } },
      broken: { type: 'kubernetes.io/dockerconfigjson', data: { '.dockerconfigjson': b64('{not json') } },
    };
    const source: ConfigSource = { configMap: async () => undefined, secret: async (_ns, name) => secrets[name] };
    const warnings: string[] = [];
    const pod: V1Pod = { metadata: { namespace: 'ns' }, spec: { containers: [], imagePullSecrets: [{ name: 'modern' }, { name: 'missing' }, { name: 'legacy' }, { name: 'broken' }] } };
    const creds = await pullCredentials(pod, source, (w) => warnings.push(w));
    assert.deepEqual(creds.map((c) => [c.registry, c.username, c.password]), [['a.io', 'u', 'p'], ['b.io', 'x', 'y']]);
    assert.equal(warnings.length, 2);
    assert.match(warnings.join('\n'), /ns\/missing not found/);
    assert.match(warnings.join('\n'), /ns\/broken/);
  });
});
