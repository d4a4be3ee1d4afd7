import assert from 'node:assert/strict';
import { test } from 'node:test';
import { claimsDirectory, isActorNamespace } from './actor-calls.ts';
import type { ActorClaims } from './types.ts';

const KEY = 'MB4OLDIC3TCZ4Q4TGGOVAZC43VXFE2JQVRAXQMQFXUCREOOFEKOKZTY2';
const claims = (sub: string, alias?: string): ActorClaims => ({ jti: 'j', iat: 1, iss: 'A', sub, wascap: { hash: 'H', ...(alias ? { call_alias: alias } : {}) } });

test('actor namespaces: module keys and names without ":"; contracts are not actors', () => {
  assert.equal(isActorNamespace(KEY), true);
  assert.equal(isActorNamespace('pinger'), true);
  assert.equal(isActorNamespace('wascc:keyvalue'), false);
  assert.equal(isActorNamespace('wasmlet:messaging'), false);
  assert.equal(isActorNamespace(''), false);
});

test('the claims directory: keys looked up directly, aliases from a cached listing', async () => {
  let lists = 0;
  const store = {
    get: async (k: string) => (k === KEY ? claims(KEY, 'echo') : undefined),
    list: async () => {
      lists++;
      return [claims(KEY, 'echo'), claims('MOTHER', 'other')];
    },
  };
  const dir = claimsDirectory(store, 60_000);
  assert.equal((await dir.lookup(KEY))?.sub, KEY);
  assert.equal((await dir.lookup('echo'))?.sub, KEY);
  assert.equal((await dir.lookup('other'))?.sub, 'MOTHER');
  assert.equal(await dir.lookup('nobody'), undefined);
  assert.equal(lists, 1, 'one listing serves look-ups within the TTL');
  const failing = claimsDirectory({ get: store.get, list: async () => Promise.reject(new Error('bucket gone')) });
  await assert.rejects(failing.lookup('echo'), /bucket gone/);
});
