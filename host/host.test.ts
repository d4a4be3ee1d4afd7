import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { compileWat, signTestActor, testAccount, toolboxActor, toolboxWat, type SignedTestActor } from '../test/helpers/wat.ts';
import { decode, encode, generateKeyPair, Host, InProcessBus, InvocationError, MemoryClaimsSource, MemoryLinkStore, type HostEvent, type LinkDefinition, isClaimsError, isInvocationError, KEY_VALUE, type CapabilityProvider, type ProviderCall } from './index.ts';

const fixtures = new URL('../../shared/fixtures/', import.meta.url);
const echoBytes = readFileSync(new URL('wascc/echo.wasm', fixtures));
const logger = pino({ level: 'silent' });

/** A key-value stand-in that records how many calls are in flight at once. */
class ProbeProvider implements CapabilityProvider {
  readonly contract = KEY_VALUE;
  readonly name = 'probe';
  inFlight = 0;
  peak = 0;
  calls: ProviderCall[] = [];
  linkOps: string[] = [];
  constructor(private readonly delayMs: number) {}
  async start() {}
  async stop() {}
  async putLink(l: LinkDefinition) {
    this.linkOps.push(`put ${l.actor} ${JSON.stringify(l.values)}`);
  }
  async deleteLink(l: LinkDefinition) {
    this.linkOps.push(`delete ${l.actor}`);
  }
  async handle(call: ProviderCall): Promise<Uint8Array> {
    this.calls.push(call);
    this.inFlight++;
    this.peak = Math.max(this.peak, this.inFlight);
    await new Promise((r) => setTimeout(r, this.delayMs));
    this.inFlight--;
    return encode({ value: 'from-probe', exists: true });
  }
}

const httpRequest = (path: string) => encode({ method: 'GET', path, queryString: '', header: {}, body: new Uint8Array() });

describe('host', () => {
  let host: Host;
  let toolbox: SignedTestActor;

  before(async () => {
    host = await Host.start({ workers: 3, deadlineMs: 2000 }, { logger });
    toolbox = await toolboxActor();
  });
  after(async () => {
    await host.stop();
  });

  it('runs the unmodified waSCC echo actor and keeps its console lines per actor', async () => {
    const info = await host.startActor(echoBytes);
    assert.equal(info.id, 'MB4OLDIC3TCZ4Q4TGGOVAZC43VXFE2JQVRAXQMQFXUCREOOFEKOKZTY2');
    assert.equal(info.name, 'Echo Actor');
    assert.equal(info.kind, 'wapc');
    assert.equal(info.state, 'running');
    const out = decode<{ statusCode: number; body: Uint8Array }>(
      await host.invokeActor(info.id, 'HandleRequest', encode({ method: 'PUT', path: '/x/y', queryString: 'q=1', header: { a: 'b' }, body: Buffer.from('hey') })),
    );
    assert.equal(out.statusCode, 200);
    const body = JSON.parse(Buffer.from(out.body).toString());
    assert.deepEqual(body, { method: 'PUT', path: '/x/y', query_string: 'q=1', headers: { a: 'b' }, body: [...Buffer.from('hey')] });
    const lines = [];
    for await (const r of host.logs.read(info.id)) lines.push(r);
    assert.ok(lines.some((l) => l.stream === 'console' && l.msg.includes('/x/y')), 'console line kept for the actor');
    await assert.rejects(host.startActor(echoBytes), /already running/);
    await host.stopActor(info.id);
    await assert.rejects(host.invokeActor(info.id, 'HandleRequest', httpRequest('/')), (e) => isInvocationError(e) && e.code === 'ACTOR_NOT_FOUND');
  });

  it('refuses an unsigned module and names the reason', async () => {
    const bytes = await compileWat(toolboxWat());
    await assert.rejects(host.startActor(bytes), (e) => isClaimsError(e) && e.code === 'CLAIMS_MISSING' && /jwt|claims|sign/i.test(e.message));
  });

  it('refuses an issuer outside the allow-list', async () => {
    const other = generateKeyPair('account');
    const strict = await Host.start({ workers: 1, issuers: [other.publicKey] }, { logger });
    try {
      await assert.rejects(strict.startActor(toolbox.bytes), (e) => isClaimsError(e) && e.code === 'CLAIMS_ISSUER_NOT_ALLOWED' && e.message.includes(testAccount.publicKey));
      const signedByOther = signTestActor(await compileWat(toolboxWat()), { name: 'ok', caps: [], account: other.seed });
      const info = await strict.startActor(signedByOther.bytes);
      assert.equal(info.issuer, other.publicKey);
    } finally {
      await strict.stop();
    }
  });

  it('denies, at call time, a contract that is not claimed and one that is not linked', async () => {
    const httpOnly = signTestActor(await compileWat(toolboxWat()), { name: 'http-only', caps: ['wascc:http_server'] });
    const probe = new ProbeProvider(0);
    const h = await Host.start({ workers: 2 }, { logger });
    try {
      await h.addProvider(probe);
      await h.startActor(httpOnly.bytes);
      await h.startActor(toolbox.bytes);
      // Not claimed: even a link does not help, and the link itself is refused.
      await assert.rejects(h.putLink({ actor: httpOnly.id, contract: 'wascc:keyvalue', values: {} }), /does not claim/);
      await assert.rejects(h.invokeActor(httpOnly.id, 'wascc:keyvalue', encode({ key: 'k' })), (e) => isInvocationError(e) && e.code === 'GUEST_ERROR' && /not allowed.*claims/.test(e.message));
      // Claimed, not linked.
      await assert.rejects(h.invokeActor(toolbox.id, 'wascc:keyvalue', encode({ key: 'k' })), (e) => isInvocationError(e) && e.code === 'GUEST_ERROR' && /no link/.test(e.message));
      assert.equal(probe.calls.length, 0, 'the provider was never reached');
      // Linked: the call goes through, under the default link name.
      await h.putLink({ actor: toolbox.id, contract: 'wascc:keyvalue', values: {} });
      const out = decode<{ value: string }>(await h.invokeActor(toolbox.id, 'wascc:keyvalue', encode({ key: 'k' })));
      assert.equal(out.value, 'from-probe');
      assert.deepEqual(probe.calls.map((c) => [c.actor, c.linkName, c.operation]), [[toolbox.id, 'default', 'Get']]);
      // And denied again once unlinked.
      assert.equal(await h.deleteLink(toolbox.id, 'wasmlet:keyvalue'), true);
      await assert.rejects(h.invokeActor(toolbox.id, 'wascc:keyvalue', encode({ key: 'k' })), /no link/);
    } finally {
      await h.stop();
    }
  });

  it('serves concurrent calls from a bounded pool of instances, never two calls in one instance', async () => {
    const probe = new ProbeProvider(40);
    const h = await Host.start({ workers: 4 }, { logger });
    try {
      await h.addProvider(probe);
      await h.startActor(toolbox.bytes, { maxInstances: 3 });
      await h.putLink({ actor: toolbox.id, contract: KEY_VALUE, values: {} });
      const results = await Promise.allSettled(Array.from({ length: 12 }, () => h.invokeActor(toolbox.id, 'wascc:keyvalue', encode({ key: 'k' }))));
      const failures = results.filter((r) => r.status === 'rejected');
      assert.deepEqual(failures, [], 'no call failed (a re-entered instance would answer "reentered")');
      assert.equal(probe.peak, 3, 'exactly maxInstances calls ran at once');
      assert.equal(h.actor(toolbox.id)!.instances, 3);
    } finally {
      await h.stop();
    }
  });

  it('never loses a host-call reply under sustained load', async () => {
    // Every call makes a host call whose reply crosses threads through shared memory; none may be
    // lost or left to its deadline. (A race once dropped about 1 reply in 10-30k under heavy load;
    // this test does not reproduce that window reliably, but guards the property.)
    const probe = new ProbeProvider(0);
    const h = await Host.start({ workers: 2, deadlineMs: 5000 }, { logger });
    try {
      await h.addProvider(probe);
      await h.startActor(toolbox.bytes);
      await h.putLink({ actor: toolbox.id, contract: KEY_VALUE, values: {} });
      const total = 20_000;
      let next = 0;
      const failures: string[] = [];
      const msg = encode({ key: 'k' });
      await Promise.all(
        Array.from({ length: 64 }, async () => {
          while (next < total) {
            next++;
            await h.invokeActor(toolbox.id, 'wascc:keyvalue', msg).catch((e: Error) => failures.push(e.message));
          }
        }),
      );
      assert.deepEqual(failures.slice(0, 3), [], `${failures.length} of ${total} calls failed`);
      assert.equal(probe.calls.length, total);
    } finally {
      await h.stop();
    }
  });

  it('stops a looping call at its deadline, replaces the worker, and keeps serving other actors meanwhile', async () => {
    const h = await Host.start({ workers: 2, deadlineMs: 1500 }, { logger });
    try {
      await h.startActor(toolbox.bytes, { maxInstances: 1 });
      const echo = await h.startActor(echoBytes, { maxInstances: 1 });
      const started = Date.now();
      const looping = h.invokeActor(toolbox.id, 'loop', new Uint8Array());
      let answered = 0;
      let slowest = 0;
      while (Date.now() - started < 1200) {
        const t = Date.now();
        const out = decode<{ statusCode: number }>(await h.invokeActor(echo.id, 'HandleRequest', httpRequest('/meanwhile')));
        assert.equal(out.statusCode, 200);
        slowest = Math.max(slowest, Date.now() - t);
        answered++;
      }
      assert.ok(answered >= 10, `echo answered ${answered} times while the loop ran`);
      await assert.rejects(looping, (e) => e instanceof InvocationError && e.code === 'DEADLINE_EXCEEDED');
      const elapsed = Date.now() - started;
      assert.ok(elapsed >= 1500 && elapsed < 4000, `stopped near its deadline (${elapsed} ms)`);
      assert.equal(h.workerRestarts, 1);
      assert.equal(h.actor(toolbox.id)!.traps, 1, 'an overrun counts as a failure of that actor');
      assert.equal(h.actor(echo.id)!.traps, 0);
      // The looping actor answers again from a fresh worker (its call waits for the worker its
      // overrun cost to start, which on a busy machine may take a while).
      const out = decode<{ statusCode: number }>(await h.invokeActor(toolbox.id, 'HandleRequest', httpRequest('/after'), { deadlineMs: 15_000 }));
      assert.equal(out.statusCode, 200);
    } finally {
      await h.stop();
    }
  });

  it('discards a trapped instance and answers the next call', async () => {
    const h = await Host.start({ workers: 2 }, { logger });
    try {
      await h.startActor(toolbox.bytes, { maxInstances: 1 });
      await assert.rejects(h.invokeActor(toolbox.id, 'HandleRequest', httpRequest('/boom!')), (e) => isInvocationError(e) && e.code === 'TRAP' && /unreachable/.test(e.message));
      const out = decode<{ statusCode: number; body: Uint8Array }>(await h.invokeActor(toolbox.id, 'HandleRequest', httpRequest('/fine')));
      assert.equal(out.statusCode, 200);
      assert.equal(h.workerRestarts, 0, 'a trap costs an instance, not a worker');
      assert.equal(h.actor(toolbox.id)!.traps, 1, 'the actor\'s lifecycle counts the trap');
    } finally {
      await h.stop();
    }
  });

  it('shares links and calls between hosts on one bus: a provider-only host serves another host\'s actor', async () => {
    const bus = new InProcessBus();
    const links = new MemoryLinkStore();
    // Hosts that share a bus share what they know of links and claims, as lattice members do.
    const claims = new MemoryClaimsSource();
    const actorsHost = await Host.start({ workers: 2 }, { logger, bus, links, claims });
    const providerHost = await Host.start({ workers: 0 }, { logger, bus, links, claims });
    const events: HostEvent[] = [];
    const off = actorsHost.onEvent((e) => events.push(e));
    try {
      await assert.rejects(providerHost.startActor(toolbox.bytes), /runs no actors/);
      const probe = new ProbeProvider(0);
      await providerHost.addProvider(probe);
      await actorsHost.startActor(toolbox.bytes);
      await actorsHost.putLink({ actor: toolbox.id, contract: 'wascc:keyvalue', values: { BUCKET: 'a' } });
      await actorsHost.putLink({ actor: toolbox.id, contract: 'wascc:keyvalue', values: { BUCKET: 'a' } }); // same again: no change
      assert.deepEqual(probe.linkOps, [`put ${toolbox.id} {"BUCKET":"a"}`], 'the provider on the other host learned the link once');
      const out = decode<{ value: string }>(await actorsHost.invokeActor(toolbox.id, 'wascc:keyvalue', encode({ key: 'k' })));
      assert.equal(out.value, 'from-probe', 'the call crossed to the provider host');
      // And the provider host reaches the actor on the actor host.
      const viaProviderHost = decode<{ statusCode: number }>(await providerHost.invokeActor(toolbox.id, 'HandleRequest', httpRequest('/x')));
      assert.equal(viaProviderHost.statusCode, 200);
      await actorsHost.putLink({ actor: toolbox.id, contract: 'wascc:keyvalue', values: { BUCKET: 'b' } });
      assert.equal(await actorsHost.deleteLink(toolbox.id, 'wascc:keyvalue'), true);
      assert.deepEqual(probe.linkOps.slice(1), [`put ${toolbox.id} {"BUCKET":"b"}`, `delete ${toolbox.id}`]);
      assert.deepEqual(
        events.map((e) => e.type),
        ['actor_started', 'link_put', 'link_put', 'link_put', 'link_deleted'],
      );
      await assert.rejects(actorsHost.invokeActor('MNOSUCHACTOR', 'HandleRequest', httpRequest('/')), (e) => isInvocationError(e) && e.code === 'ACTOR_NOT_FOUND');
    } finally {
      off();
      await actorsHost.stop();
      await providerHost.stop();
    }
  });
});
