import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { toolboxActor, type SignedTestActor } from '../test/helpers/wat.ts';
import { encode, Host, InProcessBus, isInvocationError, isWasmletError, KEY_VALUE, MemoryClaimsSource, providerTarget, readClaims, type CapabilityProvider, type LinkDefinition, type ProviderCall, type ProviderContext } from './index.ts';

const logger = pino({ level: 'silent' });
const echoBytes = readFileSync(new URL('../../shared/fixtures/wascc/echo.wasm', import.meta.url));
const ECHO = 'MB4OLDIC3TCZ4Q4TGGOVAZC43VXFE2JQVRAXQMQFXUCREOOFEKOKZTY2';

/** A key-value stand-in that records links applied to it and keeps its context to call actors. */
class RecordingProvider implements CapabilityProvider {
  readonly contract = KEY_VALUE;
  readonly name = 'recording';
  applied: string[] = [];
  ctx!: ProviderContext;
  async start(ctx: ProviderContext) {
    this.ctx = ctx;
  }
  async stop() {}
  async putLink(l: LinkDefinition) {
    this.applied.push(l.actor);
  }
  async deleteLink() {}
  async handle(call: ProviderCall): Promise<Uint8Array> {
    return encode({ actor: call.actor });
  }
}

describe('claims hold everywhere (one host, claims learned from a claims source)', () => {
  let host: Host;
  let claims: MemoryClaimsSource;
  let bus: InProcessBus;
  let provider: RecordingProvider;
  let kvOnly: SignedTestActor;

  before(async () => {
    claims = new MemoryClaimsSource();
    bus = new InProcessBus();
    host = await Host.start({ workers: 1 }, { logger, claims, bus });
    provider = new RecordingProvider();
    await host.addProvider(provider);
    kvOnly = await toolboxActor({ name: 'kv only', caps: ['wascc:keyvalue'] });
  });
  after(async () => {
    await host.stop();
  });

  it("a link for a contract the actor's claims lack is refused, whether the actor runs here or elsewhere", async () => {
    // echo runs on "another host": this host knows its claims from the claims source.
    const echo = readClaims(echoBytes);
    await claims.record(echo.token, echo.claims);
    await assert.rejects(host.putLink({ actor: ECHO, contract: 'wascc:keyvalue' }), (err: unknown) => isWasmletError(err) && err.code === 'LINK_NOT_CLAIMED' && /its claims allow: wasmlet:httpserver/.test(err.message));
    assert.equal(host.links.get(ECHO, KEY_VALUE), undefined, 'not kept');
    assert.deepEqual(provider.applied, []);
  });

  it("a link whose actor's claims are unknown is kept, and applied to a provider here only once the claims arrive and name its contract", async () => {
    await host.putLink({ actor: kvOnly.id, contract: 'wascc:keyvalue' });
    assert.ok(host.links.get(kvOnly.id, KEY_VALUE), 'kept in the link store');
    assert.deepEqual(provider.applied, [], 'not applied yet: claims unknown');
    const read = readClaims(kvOnly.bytes);
    await claims.record(read.token, read.claims);
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(provider.applied, [kvOnly.id], 'applied when the claims arrived');
  });

  it("a provider calls an actor only when the actor claims the provider's contract (or claims are known at all)", async () => {
    await host.startActor(echoBytes);
    // echo claims the HTTP server, not key-value: the key-value provider may not call it.
    await assert.rejects(provider.ctx.invokeActor(ECHO, 'HandleRequest', new Uint8Array()), (err: unknown) => isInvocationError(err) && err.code === 'NOT_CLAIMED' && /does not claim wasmlet:keyvalue/.test(err.message));
    await assert.rejects(provider.ctx.invokeActor('MUNKNOWNACTOR', 'x', new Uint8Array()), (err: unknown) => isInvocationError(err) && err.code === 'NOT_CLAIMED' && /not known on this host/.test(err.message));
  });

  it('a call from another host to a provider here is served only for an actor that claims the contract and is linked to it', async () => {
    const call = (actor: string) => bus.request({ origin: actor, target: providerTarget(KEY_VALUE, 'default'), operation: 'Get', msg: new Uint8Array(), deadline: Date.now() + 1000, actor, linkName: 'default' });
    assert.ok(await call(kvOnly.id), 'claimed and linked: served');
    await assert.rejects(call(ECHO), (err: unknown) => isInvocationError(err) && err.code === 'NOT_CLAIMED');
    await assert.rejects(call('MNOBODY'), (err: unknown) => isInvocationError(err) && err.code === 'NOT_CLAIMED');
    const other = await toolboxActor({ name: 'kv, not linked', caps: ['wascc:keyvalue'] });
    const read = readClaims(other.bytes);
    await claims.record(read.token, read.claims);
    await assert.rejects(call(other.id), (err: unknown) => isInvocationError(err) && err.code === 'NOT_LINKED');
  });
});
