/**
 * Size caps on what crosses between an actor and the host: a host-call payload past
 * `maxHostCallBytes` is refused in the actor's worker (the actor gets an error value, the
 * provider never sees it), a reply past it is not handed over, and a response past
 * `maxResponseBytes` fails the call with PAYLOAD_TOO_LARGE (HTTP 502) — for waPC modules and
 * components alike. The actor keeps serving.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { HttpServerProvider } from '../capabilities/index.ts';
import { decode, encode, Host, HTTP_SERVER, isInvocationError, KEY_VALUE, wapcRuntime, type CapabilityProvider, type ProviderCall } from '../host/index.ts';
import { buildTestActor, testComponentRuntime, toolboxProject } from './helpers/component-actors.ts';
import { freePort } from './helpers/redis-server.ts';
import { toolboxActor, type SignedTestActor } from './helpers/wat.ts';

const logger = pino({ level: 'silent' });
const HOST_CALL_BYTES = 64 * 1024;
const RESPONSE_BYTES = 8 * 1024;

/** A key-value stand-in that answers every call with `size` bytes and records what it was sent. */
class SizedProvider implements CapabilityProvider {
  readonly contract = KEY_VALUE;
  readonly name = 'sized';
  calls: ProviderCall[] = [];
  size = 16;
  async start() {}
  async stop() {}
  async putLink() {}
  async deleteLink() {}
  async handle(call: ProviderCall): Promise<Uint8Array> {
    this.calls.push(call);
    return new Uint8Array(this.size).fill(7);
  }
}

describe('payload caps', () => {
  let host: Host;
  let provider: SizedProvider;
  let toolbox: SignedTestActor;

  before(async () => {
    host = await Host.start({ workers: 2, maxHostCallBytes: HOST_CALL_BYTES, maxResponseBytes: RESPONSE_BYTES }, { logger, runtimes: [wapcRuntime, testComponentRuntime()] });
    provider = new SizedProvider();
    await host.addProvider(provider);
    await host.addProvider(new HttpServerProvider());
    toolbox = await toolboxActor();
    await host.startActor(toolbox.bytes);
    await host.putLink({ actor: toolbox.id, contract: KEY_VALUE, values: {} });
  });
  after(() => host?.stop());

  it('refuses a host-call payload past the cap in the worker: an error value for the actor, nothing for the provider', async () => {
    const before = provider.calls.length;
    await assert.rejects(
      host.invokeActor(toolbox.id, 'wascc:keyvalue/Set', new Uint8Array(HOST_CALL_BYTES + 1)),
      (e) => isInvocationError(e) && e.code === 'GUEST_ERROR' && new RegExp(`the payload is ${HOST_CALL_BYTES + 1} bytes, over the limit of ${HOST_CALL_BYTES} \\(maxHostCallBytes\\)`).test(e.message),
    );
    assert.equal(provider.calls.length, before, 'the provider never saw it');
    // At the cap it goes through.
    provider.size = 16;
    assert.equal((await host.invokeActor(toolbox.id, 'wascc:keyvalue/Set', new Uint8Array(HOST_CALL_BYTES))).byteLength, 16);
    assert.equal(provider.calls.at(-1)!.msg.byteLength, HOST_CALL_BYTES);
  });

  it('does not hand over a host-call reply past the cap', async () => {
    provider.size = HOST_CALL_BYTES + 1;
    await assert.rejects(host.invokeActor(toolbox.id, 'wascc:keyvalue/Get', encode({ key: 'k' })), (e) => isInvocationError(e) && e.code === 'GUEST_ERROR' && /host call reply refused: it is 65537 bytes, over the limit of 65536/.test(e.message));
  });

  it('fails a call whose response is past the cap with PAYLOAD_TOO_LARGE (502 over HTTP), and the actor keeps serving', async () => {
    provider.size = RESPONSE_BYTES + 1; // the toolbox answers with what its host call returned
    await assert.rejects(host.invokeActor(toolbox.id, 'wascc:keyvalue/Get', encode({ key: 'k' })), (e) => isInvocationError(e) && e.code === 'PAYLOAD_TOO_LARGE' && /answered wascc:keyvalue\/Get with 8193 bytes, over the limit of 8192 \(maxResponseBytes\)/.test(e.message));
    provider.size = RESPONSE_BYTES;
    assert.equal((await host.invokeActor(toolbox.id, 'wascc:keyvalue/Get', encode({ key: 'k' }))).byteLength, RESPONSE_BYTES);
    assert.equal(host.workerRestarts, 0);
    assert.equal(host.actor(toolbox.id)!.traps, 0, 'not a trap: the instance is kept');
  });

  describe('components', () => {
    let actor: string;
    before(async () => {
      const built = await buildTestActor(toolboxProject);
      actor = (await host.startActor(built.bytes)).id;
      await host.putLink({ actor, contract: KEY_VALUE, values: {} });
    });

    const call = (path: string, body: string | object) =>
      host.invokeActor(actor, 'HandleRequest', encode({ method: 'POST', path, queryString: '', header: {}, body: Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)) }));

    it('get an error value for a host-call payload past the cap', async () => {
      const before = provider.calls.length;
      const out = decode<{ body: Uint8Array }>(await call('/kv', { op: 'set', args: ['k', 'x'.repeat(HOST_CALL_BYTES), { expiresSeconds: 0 }] }));
      const answer = JSON.parse(Buffer.from(out.body).toString());
      assert.equal(answer.ok, false);
      assert.match(answer.error.message, /over the limit of 65536 \(maxHostCallBytes\)/);
      assert.equal(provider.calls.length, before, 'the provider never saw it');
    });

    it('fail a call whose response is past the cap, and keep serving', async () => {
      await assert.rejects(call('/echo', 'y'.repeat(RESPONSE_BYTES)), (e) => isInvocationError(e) && e.code === 'PAYLOAD_TOO_LARGE');
      const out = decode<{ statusCode: number }>(await call('/echo', 'small'));
      assert.equal(out.statusCode, 201);
    });

    it('over HTTP, an oversized response is a 502', async () => {
      const port = await freePort();
      await host.putLink({ actor, contract: HTTP_SERVER, values: { PORT: String(port), ADDRESS: '127.0.0.1' } });
      const big = await fetch(`http://127.0.0.1:${port}/echo`, { method: 'POST', body: 'z'.repeat(RESPONSE_BYTES) });
      assert.equal(big.status, 502);
      assert.equal(await big.text(), "bad gateway: the actor's response is too large\n");
      assert.equal((await fetch(`http://127.0.0.1:${port}/echo`, { method: 'POST', body: 'ok' })).status, 201);
    });
  });
});
