import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { connect, type NatsConnection } from 'nats';
import { canonicalContract, decode, isOptionsError, MESSAGING } from '../../host/index.ts';
import { startNatsServer, type NatsServer } from '../../test/helpers/nats-server.ts';
import { isLinkError } from '../errors.ts';
import { directHarness } from '../harness.ts';
import { publishPayload, runMessagingConformance, waitFor, type DeliveredMessage } from './conformance.ts';
import { MessagingProvider } from './provider.ts';

let server: NatsServer;
before(async () => {
  server = await startNatsServer();
});
after(async () => {
  await server?.stop();
});

runMessagingConformance('in-process broker', () => directHarness(new MessagingProvider()));
runMessagingConformance('NATS', () => directHarness(new MessagingProvider()), () => ({ URL: server.url }));

const A = 'MB4OLDIC3TCZ4Q4TGGOVAZC43VXFE2JQVRAXQMQFXUCREOOFEKOKZTY2';
const B = 'MASCXFM4R6X63UD5MSCDZYCJNPBVSIU6RKMXUPXRKAOSBQ6UY3VT3NPZ';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('serves wasmlet:messaging and its waSCC and wasmCloud aliases', () => {
  assert.equal(new MessagingProvider().contract, MESSAGING);
  assert.equal(canonicalContract('wascc:messaging'), MESSAGING);
  assert.equal(canonicalContract('wasmcloud:messaging'), MESSAGING);
});

test('NATS: plain NATS clients and actors talk both ways; QUEUEGROUP_NAME is waSCC\'s queue', async () => {
  const nc: NatsConnection = await connect({ servers: server.url });
  const h = await directHarness(new MessagingProvider());
  try {
    await h.putLink(A, { URL: server.url, SUBSCRIPTION: 'plain.in', QUEUEGROUP_NAME: 'wascc-q' });
    await sleep(100);
    const seen: string[] = [];
    const sub = nc.subscribe('plain.out', { callback: (_e, m) => seen.push(new TextDecoder().decode(m.data)) });
    await nc.flush();
    await h.call(A, 'Publish', publishPayload('plain.out', 'from the actor'));
    nc.publish('plain.in', new TextEncoder().encode('from outside'), { reply: 'plain.reply' });
    await waitFor(() => seen.length === 1 && h.invocations.length === 1, 'both directions');
    assert.deepEqual(seen, ['from the actor']);
    const d = decode<DeliveredMessage>(h.invocations[0]!.msg);
    assert.deepEqual([d.subject, d.replyTo, Buffer.from(d.body).toString()], ['plain.in', 'plain.reply', 'from outside']);
    sub.unsubscribe();
  } finally {
    await h.close();
    await nc.close();
  }
});

test('NATS: an unreachable URL refuses the link, naming the server without credentials', async () => {
  const h = await directHarness(new MessagingProvider({ connectTimeoutMs: 300 }));
  try {
    await assert.rejects(h.putLink(A, { URL: 'nats://user:secret@127.0.0.1:1', SUBSCRIPTION: 'x' }), (e: unknown) => isLinkError(e) && /cannot connect/.test(e.message) && !e.message.includes('secret'));
    await assert.rejects(h.putLink(A, { URL: 'http://127.0.0.1:4222' }), (e: unknown) => isLinkError(e) && /nats:\/\//.test(e.message));
  } finally {
    await h.close();
  }
});

test('a slow actor: deliveries are bounded in flight and in queue; the rest are dropped and counted', async () => {
  const provider = new MessagingProvider({ deliveryConcurrency: 2, maxPendingDeliveries: 5 });
  const h = await directHarness(provider);
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let running = 0;
  let peak = 0;
  h.respond(async () => {
    peak = Math.max(peak, ++running);
    await gate;
    running--;
    return new Uint8Array(0);
  });
  try {
    await h.putLink(A, {});
    await h.putLink(B, { SUBSCRIPTION: 'flood' });
    for (let i = 0; i < 50; i++) await h.call(A, 'Publish', publishPayload('flood', String(i)));
    await sleep(50);
    assert.equal(peak, 2, 'never more than deliveryConcurrency at once');
    release();
    await waitFor(() => provider.linkStats(B)!.delivered === 7, '2 running + 5 queued delivered');
    assert.equal(provider.linkStats(B)!.dropped, 43);
    assert.deepEqual(h.invocations.map((i) => Buffer.from(decode<DeliveredMessage>(i.msg).body).toString()), ['0', '1', '2', '3', '4', '5', '6'], 'in order, the oldest kept');
  } finally {
    await h.close();
  }
});

test('deliveryConcurrency 1 keeps messages in order', async () => {
  const h = await directHarness(new MessagingProvider({ deliveryConcurrency: 1 }));
  h.respond(async () => {
    await sleep(Math.random() * 3);
    return new Uint8Array(0);
  });
  try {
    await h.putLink(A, {});
    await h.putLink(B, { SUBSCRIPTION: 'seq' });
    for (let i = 0; i < 30; i++) await h.call(A, 'Publish', publishPayload('seq', String(i)));
    await waitFor(() => h.invocations.length === 30, 'all 30');
    assert.deepEqual(h.invocations.map((i) => Number(Buffer.from(decode<DeliveredMessage>(i.msg).body).toString())), Array.from({ length: 30 }, (_, i) => i));
  } finally {
    await h.close();
  }
});

test('a failed delivery is logged and counted, and the next one still arrives', async () => {
  const provider = new MessagingProvider();
  const h = await directHarness(provider);
  let n = 0;
  h.respond(() => {
    if (n++ === 0) throw new Error('trap');
    return new Uint8Array(0);
  });
  try {
    await h.putLink(A, {});
    await h.putLink(B, { SUBSCRIPTION: 'x' });
    await h.call(A, 'Publish', publishPayload('x', 'a'));
    await h.call(A, 'Publish', publishPayload('x', 'b'));
    await waitFor(() => h.invocations.length === 2, 'both');
    await waitFor(() => provider.linkStats(B)!.failed === 1, 'the failure counted');
  } finally {
    await h.close();
  }
});

test('options are validated', () => {
  assert.throws(() => new MessagingProvider({ deliveryConcurrency: 0 }), (e: unknown) => isOptionsError(e) && /deliveryConcurrency/.test(e.message));
  assert.throws(() => new MessagingProvider({ nope: true } as never), isOptionsError);
});
