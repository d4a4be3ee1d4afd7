import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { describe, it } from 'node:test';
import pino from 'pino';
import { KubeletAuthenticator } from './auth.ts';
import type { KubeClients } from './kube-client.ts';

const req = (authorization?: string, cert?: { authorized: boolean; cn?: string }) =>
  ({
    headers: authorization ? { authorization } : {},
    socket: { authorized: cert?.authorized ?? false, getPeerCertificate: () => ({ subject: { CN: cert?.cn } }) },
  }) as unknown as IncomingMessage;

function reviewer(answers: Record<string, string | undefined>) {
  const calls: string[] = [];
  const clients = {
    authentication: {
      createTokenReview: async ({ body }: { body: { spec: { token: string } } }) => {
        calls.push(body.spec.token);
        if (body.spec.token === 'explode') throw new Error('connection refused');
        const user = answers[body.spec.token];
        return { status: user ? { authenticated: true, user: { username: user } } : { authenticated: false } };
      },
    },
  } as unknown as KubeClients;
  return { clients, calls };
}

const logger = pino({ level: 'silent' });

describe('kubelet API authentication', () => {
  it('accepts a verified client certificate and a listed token, nothing else', async () => {
    const a = new KubeletAuthenticator(undefined, { tokens: ['good'], tokenReview: false, cacheMs: 1000, logger });
    assert.deepEqual(await a.authenticate(req(undefined, { authorized: true, cn: 'kube-apiserver' })), { user: 'kube-apiserver', via: 'client-certificate' });
    assert.deepEqual(await a.authenticate(req('Bearer good')), { user: 'static-token', via: 'token' });
    assert.equal(await a.authenticate(req('Bearer bad')), undefined);
    assert.equal(await a.authenticate(req('Basic Z29vZA==')), undefined);
    assert.equal(await a.authenticate(req(undefined, { authorized: false, cn: 'stranger' })), undefined);
    assert.equal(await a.authenticate(req()), undefined);
  });

  it('asks the API server about other tokens, caching answers but not failures', async () => {
    const { clients, calls } = reviewer({ 'sa-token': 'system:serviceaccount:default:reader' });
    const a = new KubeletAuthenticator(clients, { tokens: [], tokenReview: true, cacheMs: 60_000, logger });
    assert.deepEqual(await a.authenticate(req('Bearer sa-token')), { user: 'system:serviceaccount:default:reader', via: 'token-review' });
    assert.deepEqual(await a.authenticate(req('Bearer sa-token')), { user: 'system:serviceaccount:default:reader', via: 'token-review' });
    assert.equal(await a.authenticate(req('Bearer nobody')), undefined);
    assert.equal(await a.authenticate(req('Bearer nobody')), undefined);
    assert.equal(await a.authenticate(req('Bearer explode')), undefined);
    assert.equal(await a.authenticate(req('Bearer explode')), undefined);
    assert.deepEqual(calls, ['sa-token', 'nobody', 'explode', 'explode']);
  });
});
