import assert from 'node:assert/strict';
import { test } from 'node:test';
import { canonicalContract, decode, EXTRAS } from '../../host/index.ts';
import { directHarness } from '../harness.ts';
import { readExtrasReply } from './codec.ts';
import { EXTRAS_REQUESTS, runExtrasConformance } from './conformance.ts';
import { ExtrasProvider } from './provider.ts';

runExtrasConformance('in-process', () => directHarness(new ExtrasProvider()));

const ACTOR = 'MB4OLDIC3TCZ4Q4TGGOVAZC43VXFE2JQVRAXQMQFXUCREOOFEKOKZTY2';

test('serves wasmlet:extras and its waSCC alias', () => {
  assert.equal(new ExtrasProvider().contract, EXTRAS);
  assert.equal(canonicalContract('wascc:extras'), EXTRAS);
});

test('a sequence survives a link deleted and put again, and is forgotten when the provider stops', async () => {
  const provider = new ExtrasProvider();
  const h = await directHarness(provider);
  const next = async () => readExtrasReply('RequestSequence', decode(await h.call(ACTOR, 'RequestSequence', EXTRAS_REQUESTS.struct.RequestSequence())));
  await h.putLink(ACTOR, {});
  assert.equal(await next(), 0);
  await h.deleteLink(ACTOR);
  await h.putLink(ACTOR, {});
  assert.equal(await next(), 1);
  await h.close();
  await assert.rejects(next(), /stopped/);
  const again = await directHarness(provider);
  assert.equal(readExtrasReply('RequestSequence', decode(await again.call(ACTOR, 'RequestSequence', EXTRAS_REQUESTS.enum.RequestSequence()))), 0);
  await again.close();
});
