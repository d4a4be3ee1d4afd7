/**
 * The messaging contract's conformance suite: waSCC's `Publish`, `Request` and `DeliverMessage`
 * shapes, subscriptions with wildcards and queue groups that follow link put/delete, request
 * timeouts, and the subjects an actor may not reach. `linkValues` chooses the broker (e.g.
 * `{URL: nats://…}`; none: the in-process broker).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decode, encode } from '../../host/index.ts';
import { isLinkError, isOperationError } from '../errors.ts';
import type { ActorInvocation, ProviderHarness } from '../harness.ts';
import { rejectsWith } from '../keyvalue/conformance.ts';

const A = 'MB4OLDIC3TCZ4Q4TGGOVAZC43VXFE2JQVRAXQMQFXUCREOOFEKOKZTY2';
const B = 'MASCXFM4R6X63UD5MSCDZYCJNPBVSIU6RKMXUPXRKAOSBQ6UY3VT3NPZ';
const C = 'MDJUPIQFWEHWE4XHPWHOJLW42SJDPVBQVDC2NV3T3O4ELXXVOXLA5M4I';

export interface DeliveredMessage {
  subject: string;
  replyTo: string;
  body: Uint8Array;
}

/** A waSCC `BrokerMessage` as an actor's `Publish` sends it. */
export function publishPayload(subject: string, body: string | Uint8Array, replyTo = ''): Uint8Array {
  return encode({ subject, replyTo, body: typeof body === 'string' ? Buffer.from(body) : body });
}

/** A waSCC `RequestMessage`. */
export function requestPayload(subject: string, body: string, timeout: number): Uint8Array {
  return encode({ subject, body: Buffer.from(body), timeout });
}

export async function waitFor(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function deliveries(h: ProviderHarness, actor?: string): Array<DeliveredMessage & { actor: string }> {
  return h.invocations
    .filter((i: ActorInvocation) => i.operation === 'DeliverMessage' && (actor === undefined || i.actor === actor))
    .map((i) => ({ actor: i.actor, ...decode<DeliveredMessage>(i.msg) }));
}

const text = (b: Uint8Array) => Buffer.from(b).toString('utf8');


/** Lets subscriptions reach the server (NATS subscribes asynchronously) before publishing. */
const SETTLE_MS = 100;

export function runMessagingConformance(name: string, open: () => Promise<ProviderHarness>, linkValues: () => Record<string, string> = () => ({})): void {
  const withHarness = (fn: (h: ProviderHarness, link: (actor: string, values: Record<string, string>) => Promise<void>, subjectPrefix: string) => Promise<void>) => async () => {
    const h = await open();
    // Each test its own subjects, so tests never see each other's messages on a shared server.
    const prefix = `conf${Math.random().toString(36).slice(2, 8)}`;
    try {
      await fn(h, async (actor, values) => {
        await h.putLink(actor, { ...linkValues(), ...values });
        await sleep(SETTLE_MS);
      }, prefix);
    } finally {
      await h.close();
    }
  };
  const publish = (h: ProviderHarness, actor: string, subject: string, body: string, replyTo = '') => h.call(actor, 'Publish', publishPayload(subject, body, replyTo));

  describe(`messaging conformance: ${name}`, () => {
    test('Publish reaches a subscribed actor as waSCC\'s DeliverMessage {subject, replyTo, body}', withHarness(async (h, link, p) => {
      await link(A, {});
      await link(B, { SUBSCRIPTION: `${p}.orders` });
      const reply = await publish(h, A, `${p}.orders`, 'first order', `${p}.answers`);
      assert.deepEqual(decode(reply), {}, 'Publish answers an empty map');
      await waitFor(() => deliveries(h, B).length === 1, 'the delivery');
      const inv = h.invocations.find((i) => i.operation === 'DeliverMessage')!;
      const m = decode<Record<string, unknown>>(inv.msg);
      assert.deepEqual(Object.keys(m), ['subject', 'replyTo', 'body']);
      assert.equal(m.subject, `${p}.orders`);
      assert.equal(m.replyTo, `${p}.answers`);
      assert.ok(m.body instanceof Uint8Array, 'body is msgpack bin');
      assert.equal(text(m.body as Uint8Array), 'first order');
      assert.equal(inv.msg[0], 0x83, 'a map of three fields');
    }));

    test('wildcards: * matches one token, > the rest; other subjects are not delivered', withHarness(async (h, link, p) => {
      await link(A, {});
      await link(B, { SUBSCRIPTION: `${p}.orders.*, ${p}.audit.>` });
      for (const s of [`${p}.orders.new`, `${p}.orders.new.late`, `${p}.audit.a.b.c`, `${p}.audit`, `${p}.other`]) await publish(h, A, s, s);
      await waitFor(() => deliveries(h, B).length >= 2, 'two deliveries');
      await sleep(SETTLE_MS);
      assert.deepEqual(deliveries(h, B).map((d) => d.subject).sort(), [`${p}.audit.a.b.c`, `${p}.orders.new`]);
    }));

    test('without a queue group every subscribed actor gets every message; in one, each message goes to one member', withHarness(async (h, link, p) => {
      await link(A, { SUBSCRIPTION: `${p}.fan` });
      await link(B, { SUBSCRIPTION: `${p}.fan, ${p}.work|workers` });
      await link(C, { SUBSCRIPTION: `${p}.work|workers` });
      for (let i = 0; i < 3; i++) await publish(h, A, `${p}.fan`, `f${i}`);
      for (let i = 0; i < 40; i++) await publish(h, A, `${p}.work`, `w${i}`);
      await waitFor(() => deliveries(h).filter((d) => d.subject === `${p}.work`).length === 40 && deliveries(h).filter((d) => d.subject === `${p}.fan`).length === 6, 'all deliveries');
      await sleep(SETTLE_MS);
      const work = deliveries(h).filter((d) => d.subject === `${p}.work`);
      assert.equal(work.length, 40, 'each work message once');
      assert.equal(new Set(work.map((d) => text(d.body))).size, 40);
      assert.ok(work.some((d) => d.actor === B) && work.some((d) => d.actor === C), 'both members got work');
      assert.deepEqual(deliveries(h, A).map((d) => text(d.body)).sort(), ['f0', 'f1', 'f2']);
      assert.deepEqual(deliveries(h, B).filter((d) => d.subject === `${p}.fan`).map((d) => text(d.body)).sort(), ['f0', 'f1', 'f2']);
    }));

    test('Request gets the raw body of the answer an actor publishes to replyTo', withHarness(async (h, link, p) => {
      await link(A, {});
      await link(B, { SUBSCRIPTION: `${p}.svc.upper` });
      h.respond(async (inv) => {
        if (inv.actor === B && inv.operation === 'DeliverMessage') {
          const m = decode<DeliveredMessage>(inv.msg);
          await h.call(B, 'Publish', publishPayload(m.replyTo, text(m.body).toUpperCase()));
        }
        return new Uint8Array(0);
      });
      const answer = await h.call(A, 'Request', requestPayload(`${p}.svc.upper`, 'shout', 2000));
      assert.equal(text(answer), 'SHOUT', 'no wrapper around the answer');
    }));

    test('a Request nobody answers times out; one nobody listens to fails fast', withHarness(async (h, link, p) => {
      await link(A, {});
      await link(B, { SUBSCRIPTION: `${p}.silent` });
      const t0 = Date.now();
      await rejectsWith(h.call(A, 'Request', requestPayload(`${p}.silent`, 'hello?', 150)), 'BACKEND_ERROR', /timed out after 150 ms/);
      assert.ok(Date.now() - t0 < 2000);
      const t1 = Date.now();
      await rejectsWith(h.call(A, 'Request', requestPayload(`${p}.nobody`, 'hello?', 5000)), 'BACKEND_ERROR', /no responders/);
      assert.ok(Date.now() - t1 < 1000, `no responders took ${Date.now() - t1} ms`);
    }));

    test('subscriptions follow the link: put again they are replaced, deleted they stop', withHarness(async (h, link, p) => {
      await link(A, {});
      await link(B, { SUBSCRIPTION: `${p}.one` });
      await publish(h, A, `${p}.one`, '1');
      await waitFor(() => deliveries(h, B).length === 1, 'first');
      await link(B, { SUBSCRIPTION: `${p}.two` });
      await publish(h, A, `${p}.one`, 'lost');
      await publish(h, A, `${p}.two`, '2');
      await waitFor(() => deliveries(h, B).length === 2, 'second');
      await h.deleteLink(B);
      await sleep(SETTLE_MS);
      await publish(h, A, `${p}.two`, 'after delete');
      await sleep(SETTLE_MS * 2);
      assert.deepEqual(deliveries(h, B).map((d) => text(d.body)), ['1', '2']);
      await rejectsWith(publish(h, B, `${p}.two`, 'x'), 'NOT_LINKED', /no messaging link/);
    }));

    test('reserved subjects, wildcards in Publish, and oversized bodies are refused', withHarness(async (h, link, p) => {
      await link(A, {});
      await rejectsWith(publish(h, A, 'wasmlet.prod.ctl.host.ping', 'x'), 'BAD_REQUEST', /reserved/);
      await rejectsWith(publish(h, A, '$JS.API.STREAM.DELETE.x', 'x'), 'BAD_REQUEST', /reserved/);
      await rejectsWith(publish(h, A, `${p}.x`, 'x', '$SYS.REQ'), 'BAD_REQUEST', /replyTo.*reserved/);
      await rejectsWith(publish(h, A, `${p}.*`, 'x'), 'BAD_REQUEST', /not a plain subject/);
      await rejectsWith(publish(h, A, `${p}..x`, 'x'), 'BAD_REQUEST', /empty token/);
      await rejectsWith(publish(h, A, '', 'x'), 'BAD_REQUEST', /empty/);
      await rejectsWith(h.call(A, 'Publish', publishPayload(`${p}.big`, new Uint8Array(2 * 1024 * 1024))), 'BAD_REQUEST', /more than/);
      await rejectsWith(h.call(A, 'Request', requestPayload(`${p}.x`, 'x', 0)), 'BAD_REQUEST', /"timeout" must be an integer in \[1,/);
      await rejectsWith(h.call(A, 'Publish', new Uint8Array([0xc1])), 'BAD_REQUEST', /not msgpack/);
      await rejectsWith(h.call(A, 'Publish', encode({ replyTo: '' })), 'BAD_REQUEST', /"subject"/);
      await assert.rejects(h.call(A, 'Subscribe', publishPayload(`${p}.x`, 'x')), (e: unknown) => isOperationError(e) && e.code === 'UNKNOWN_OPERATION');
    }));

    test('bad SUBSCRIPTION values are refused when the link is put, keeping the previous subscriptions', withHarness(async (h, link, p) => {
      await link(A, {});
      await link(B, { SUBSCRIPTION: `${p}.kept` });
      for (const bad of ['>', '*.x', 'wasmlet.>', '$SYS.>', '_INBOX.>', 'a..b', 'a.>.b', `${p}.x, `, 'a b', `${p}.q|bad queue`]) {
        await assert.rejects(h.putLink(B, { ...linkValues(), SUBSCRIPTION: bad }), (e: unknown) => isLinkError(e) && /SUBSCRIPTION/.test(e.message), bad);
      }
      await publish(h, A, `${p}.kept`, 'still here');
      await waitFor(() => deliveries(h, B).length === 1, 'the kept subscription');
    }));
  });
}
