/**
 * The extras contract's conformance suite: what any provider of `wasmlet:extras` (alias
 * `wascc:extras`) must answer, driven with payloads byte-shaped as waSCC actors send them
 * (wascc-codec 0.6's enums and 0.7's flag structs).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decode, encode } from '../../host/index.ts';
import { isOperationError } from '../errors.ts';
import type { ProviderHarness } from '../harness.ts';
import { rejectsWith } from '../keyvalue/conformance.ts';
import { readExtrasReply, type ExtrasOperation } from './codec.ts';

const ACTOR_A = 'MB4OLDIC3TCZ4Q4TGGOVAZC43VXFE2JQVRAXQMQFXUCREOOFEKOKZTY2';
const ACTOR_B = 'MASCXFM4R6X63UD5MSCDZYCJNPBVSIU6RKMXUPXRKAOSBQ6UY3VT3NPZ';
const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** rmp-serde 0.14's enum: a one-entry map keyed by the variant index (a Map keeps it an integer). */
const indexEnum = (i: number, data: unknown = null) => new Map([[i, data]]);

/** The payloads waSCC actors send, per codec generation. */
export const EXTRAS_REQUESTS = {
  enum: {
    RequestGuid: () => encode({ typ: indexEnum(0) }),
    RequestSequence: () => encode({ typ: indexEnum(1) }),
    RequestRandom: (min: number, max: number) => encode({ typ: indexEnum(2, [min, max]) }),
  },
  struct: {
    RequestGuid: () => encode({ guid: true, sequence: false, random: false, min: 0, max: 0 }),
    RequestSequence: () => encode({ guid: false, sequence: true, random: false, min: 0, max: 0 }),
    RequestRandom: (min: number, max: number) => encode({ guid: false, sequence: false, random: true, min, max }),
  },
};

const rejectsBadRequest = (p: Promise<unknown>, pattern: RegExp) => rejectsWith(p, 'BAD_REQUEST', pattern);

export function runExtrasConformance(name: string, open: () => Promise<ProviderHarness>): void {
  const withHarness = (fn: (h: ProviderHarness, ask: (actor: string, op: ExtrasOperation, msg: Uint8Array) => Promise<string | number>) => Promise<void>) => async () => {
    const h = await open();
    try {
      await h.putLink(ACTOR_A, {});
      await h.putLink(ACTOR_B, {});
      await fn(h, async (actor, op, msg) => readExtrasReply(op, decode(await h.call(actor, op, msg))));
    } finally {
      await h.close();
    }
  };

  describe(`extras conformance: ${name}`, () => {
    for (const shape of ['enum', 'struct'] as const) {
      const req = EXTRAS_REQUESTS[shape];

      test(`${shape}: RequestGuid answers distinct UUID v4s`, withHarness(async (_h, ask) => {
        const seen = new Set<string | number>();
        for (let i = 0; i < 50; i++) {
          const g = await ask(ACTOR_A, 'RequestGuid', req.RequestGuid());
          assert.match(String(g), UUID_V4);
          seen.add(g);
        }
        assert.equal(seen.size, 50);
      }));

      test(`${shape}: RequestRandom stays in [min, max) and covers the range`, withHarness(async (_h, ask) => {
        const seen = new Set<number>();
        for (let i = 0; i < 300; i++) {
          const n = Number(await ask(ACTOR_A, 'RequestRandom', req.RequestRandom(5, 10)));
          assert.ok(Number.isInteger(n) && n >= 5 && n < 10, `out of range: ${n}`);
          seen.add(n);
        }
        assert.deepEqual([...seen].sort(), [5, 6, 7, 8, 9]);
        const big = Number(await ask(ACTOR_A, 'RequestRandom', req.RequestRandom(0xfffffff0, 0xffffffff)));
        assert.ok(big >= 0xfffffff0 && big < 0xffffffff, `u32 bounds: ${big}`);
      }));

      test(`${shape}: RequestSequence counts per actor from 0, monotonic under concurrency`, withHarness(async (_h, ask) => {
        assert.equal(await ask(ACTOR_A, 'RequestSequence', req.RequestSequence()), 0);
        assert.equal(await ask(ACTOR_A, 'RequestSequence', req.RequestSequence()), 1);
        assert.equal(await ask(ACTOR_B, 'RequestSequence', req.RequestSequence()), 0, 'another actor has its own sequence');
        const burst = await Promise.all(Array.from({ length: 100 }, () => ask(ACTOR_A, 'RequestSequence', req.RequestSequence())));
        assert.deepEqual(burst.map(Number).sort((a, b) => a - b), Array.from({ length: 100 }, (_, i) => i + 2), 'no number lost or repeated');
      }));

      test(`${shape}: min >= max is refused`, withHarness(async (h) => {
        await rejectsBadRequest(h.call(ACTOR_A, 'RequestRandom', req.RequestRandom(7, 7)), /min \(7\) must be less than max \(7\)/);
        await rejectsBadRequest(h.call(ACTOR_A, 'RequestRandom', req.RequestRandom(9, 3)), /must be less than max/);
      }));
    }

    test('replies keep the request\'s shape, byte for byte as wascc-codec reads them', withHarness(async (h) => {
      // 0.6: {value: {1: n}} with an integer key.
      const seqEnum = await h.call(ACTOR_A, 'RequestSequence', EXTRAS_REQUESTS.enum.RequestSequence());
      assert.deepEqual([...seqEnum], [0x81, 0xa5, ...Buffer.from('value'), 0x81, 0x01, 0x00]);
      // 0.7: {guid: nil, sequenceNumber: n, randomNumber: 0}.
      const seqStruct = decode(await h.call(ACTOR_A, 'RequestSequence', EXTRAS_REQUESTS.struct.RequestSequence()));
      assert.deepEqual(seqStruct, { guid: null, sequenceNumber: 1, randomNumber: 0 });
      // A variant written by name (later rmp-serde) is answered by name.
      const byName = decode(await h.call(ACTOR_A, 'RequestRandom', encode({ typ: { RandomNumber: [1, 2] } })));
      assert.deepEqual(byName, { value: { RandomNumber: 1 } });
    }));

    test('bad payloads and unknown operations are refused, naming what is wrong', withHarness(async (h) => {
      await rejectsBadRequest(h.call(ACTOR_A, 'RequestGuid', new Uint8Array([0xc1])), /not msgpack/);
      await rejectsBadRequest(h.call(ACTOR_A, 'RequestGuid', encode('guid please')), /must be a map/);
      await rejectsBadRequest(h.call(ACTOR_A, 'RequestGuid', encode({ typ: indexEnum(1) })), /asks for generator type 1, not Guid/);
      await rejectsBadRequest(h.call(ACTOR_A, 'RequestRandom', encode({ typ: indexEnum(2, 'x') })), /\[min, max\]/);
      await rejectsBadRequest(h.call(ACTOR_A, 'RequestRandom', EXTRAS_REQUESTS.struct.RequestRandom(-1, 5)), /"min" must be an integer in \[0, 4294967295\]/);
      await rejectsBadRequest(h.call(ACTOR_A, 'RequestRandom', encode({ random: true, min: 0, max: 2 ** 33 })), /"max"/);
      await assert.rejects(h.call(ACTOR_A, 'RequestTime', encode({})), (e: unknown) => isOperationError(e) && e.code === 'UNKNOWN_OPERATION' && /RequestGuid/.test(e.message));
    }));
  });
}
