/**
 * Actor-to-actor calls (waSCC's `__host_call` with an actor target): the waPC toolbox actor calls
 * waSCC's own echo.wasm (and a toolbox that declares a call alias) by module key or alias. Allowed
 * only when the caller's claims name the target's key or alias; local first, across hosts over
 * the in-process bus and over NATS, under the caller's deadline.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { claimsDirectory, connectNats, decode, encode, generateKeyPair, Host, InProcessBus, LatticeTrust, mintMemberCredentials, NatsBus, NatsClaimsStore, NatsLinkStore, verifyActor } from '../host/index.ts';
import { startNatsServer, type NatsServer } from './helpers/nats-server.ts';
import { eventually } from './helpers/wait.ts';
import { compileWat, signTestActorWith, toolboxActor, toolboxWat, type SignedTestActor } from './helpers/wat.ts';

const echoBytes = readFileSync(new URL('../../shared/fixtures/wascc/echo.wasm', import.meta.url));
const ECHO = 'MB4OLDIC3TCZ4Q4TGGOVAZC43VXFE2JQVRAXQMQFXUCREOOFEKOKZTY2';
/** Starts with neither l nor t: the toolbox spins or traps on those. */
const ALIAS = 'echo.alias';
const logger = pino({ level: 'silent' });

const request = encode({ method: 'GET', path: '/called/by/an/actor', queryString: 'x=1', header: {}, body: new Uint8Array(0) });

function echoed(reply: Uint8Array): { path: string; query_string: string } {
  const res = decode<{ statusCode: number; body: Uint8Array }>(reply);
  assert.equal(res.statusCode, 200);
  return JSON.parse(Buffer.from(res.body).toString()) as { path: string; query_string: string };
}

async function aliased(): Promise<SignedTestActor> {
  return signTestActorWith(await compileWat(toolboxWat()), { name: 'aliased', caps: [], wascap: { call_alias: ALIAS } });
}

describe('actor-to-actor calls', () => {
  describe('on one host', () => {
    let host: Host;
    let callee: SignedTestActor;
    before(async () => {
      host = await Host.start({ workers: 2, deadlineMs: 1500 }, { logger });
      await host.startActor(echoBytes);
      callee = await aliased();
      await host.startActor(callee.bytes);
    });
    after(() => host.stop());

    it('calls waSCC\'s echo.wasm by module key when the caller claims it', async () => {
      const caller = await toolboxActor({ name: 'caller', caps: [ECHO] });
      await host.startActor(caller.bytes);
      const body = echoed(await host.invokeActor(caller.id, `${ECHO}/HandleRequest`, request));
      assert.equal(body.path, '/called/by/an/actor');
      assert.equal(body.query_string, 'x=1');
      await host.stopActor(caller.id);
    });

    it('refuses a caller whose claims name neither the target nor its alias; no link helps', async () => {
      const caller = await toolboxActor({ name: 'stranger', caps: ['wascc:logging'] });
      await host.startActor(caller.bytes);
      await assert.rejects(host.invokeActor(caller.id, `${ECHO}/HandleRequest`, request), /not allowed to call actor MB4OLD\w+: its claims include neither/);
      await assert.rejects(host.invokeActor(caller.id, `${ALIAS}/HandleRequest`, request), /not allowed to call actor echo\.alias/);
      await host.stopActor(caller.id);
    });

    it('by call alias: the alias in the caller\'s claims allows calls by alias or by key', async () => {
      assert.equal(verifyActor(callee.bytes).claims.wascap.call_alias, ALIAS);
      const caller = await toolboxActor({ name: 'alias-caller', caps: [ALIAS] });
      await host.startActor(caller.bytes);
      const viaAlias = decode<{ statusCode: number }>(await host.invokeActor(caller.id, `${ALIAS}/HandleRequest`, request));
      assert.equal(viaAlias.statusCode, 200);
      const viaKey = decode<{ statusCode: number }>(await host.invokeActor(caller.id, `${callee.id}/HandleRequest`, request));
      assert.equal(viaKey.statusCode, 200);
      await assert.rejects(host.invokeActor(caller.id, 'nobody.here/HandleRequest', request), /no actor declares the call alias nobody\.here/);
      await host.stopActor(caller.id);
    });

    it('a callee that overruns fails the call within the caller\'s deadline; the host keeps serving', async () => {
      const caller = await toolboxActor({ name: 'patient', caps: [callee.id] });
      await host.startActor(caller.bytes);
      const t0 = Date.now();
      await assert.rejects(host.invokeActor(caller.id, `${callee.id}/loop`, encode({})));
      assert.ok(Date.now() - t0 < 5000, `failed after ${Date.now() - t0} ms (deadline 1500)`);
      // The overrunning worker is replaced; once the new one is up (slow on a busy machine), calls succeed.
      const after = await eventually(async () => decode<{ statusCode: number }>(await host.invokeActor(caller.id, `${callee.id}/HandleRequest`, request)), 'a call after the overrun', 15_000);
      assert.equal(after.statusCode, 200);
      await host.stopActor(caller.id);
    });
  });

  it('across hosts on the in-process bus: local-first, else the bus', async () => {
    const bus = new InProcessBus();
    const a = await Host.start({ workers: 1 }, { logger, bus });
    const b = await Host.start({ workers: 1 }, { logger, bus });
    try {
      await b.startActor(echoBytes);
      const caller = await toolboxActor({ name: 'remote-caller', caps: [ECHO] });
      await a.startActor(caller.bytes);
      assert.equal(echoed(await a.invokeActor(caller.id, `${ECHO}/HandleRequest`, request)).path, '/called/by/an/actor');
      await b.stopActor(ECHO);
      await assert.rejects(a.invokeActor(caller.id, `${ECHO}/HandleRequest`, request), /nothing serves actor\.MB4OLD/);
    } finally {
      await a.stop();
      await b.stop();
    }
  });

  describe('across hosts over NATS', () => {
    let nats: NatsServer;
    const stops: Array<() => Promise<unknown>> = [];
    before(async () => {
      nats = await startNatsServer();
    });
    after(async () => {
      for (const s of stops.reverse()) await s();
      await nats?.stop();
    });

    const issuer = generateKeyPair('account');
    async function joinHost(): Promise<{ host: Host; claims: NatsClaimsStore }> {
      const nc = await connectNats({ servers: [nats.url] }, logger);
      const trust = LatticeTrust.closed(await mintMemberCredentials({ lattice: 'calls', issuer: issuer.publicKey, issuerSeed: issuer.seed }, { role: 'host' }));
      const bus = new NatsBus(nc, trust, {}, logger);
      const links = await NatsLinkStore.open(nc, trust, {}, logger);
      const claims = await NatsClaimsStore.open(nc, trust, {}, logger);
      const host = await Host.start({ workers: 2, lattice: 'calls', hostId: bus.hostId }, { logger, bus, links, claims, actors: claimsDirectory(claims, 0) });
      stops.push(async () => {
        await host.stop();
        await bus.close();
        await links.close();
        await claims.close();
        await nc.close();
      });
      return { host, claims };
    }

    it('by key and by call alias (resolved through the lattice\'s claims), each call signed by the calling host', async () => {
      const one = await joinHost();
      const two = await joinHost();
      const callee = await aliased();
      // Starting it records its claims on the lattice, where one's calls look its alias up.
      const info = await two.host.startActor(callee.bytes);
      await eventually(async () => assert.ok(one.claims.get(callee.id), 'the callee\'s claims reached the other host'), 'claims reach the other host', 5000);
      assert.equal(info.id, callee.id);
      const byKey = await toolboxActor({ name: 'nats-key-caller', caps: [callee.id] });
      const byAlias = await toolboxActor({ name: 'nats-alias-caller', caps: [ALIAS] });
      await one.host.startActor(byKey.bytes);
      await one.host.startActor(byAlias.bytes);
      assert.equal(decode<{ statusCode: number }>(await one.host.invokeActor(byKey.id, `${callee.id}/HandleRequest`, request)).statusCode, 200);
      assert.equal(decode<{ statusCode: number }>(await one.host.invokeActor(byAlias.id, `${ALIAS}/HandleRequest`, request)).statusCode, 200);
      assert.equal(decode<{ statusCode: number }>(await one.host.invokeActor(byAlias.id, `${callee.id}/HandleRequest`, request)).statusCode, 200, 'by key, allowed by the alias the lattice knows');
      const stranger = await toolboxActor({ name: 'nats-stranger', caps: [] });
      await one.host.startActor(stranger.bytes);
      await assert.rejects(one.host.invokeActor(stranger.id, `${ALIAS}/HandleRequest`, request), /not allowed to call actor/);
    });
  });
});
