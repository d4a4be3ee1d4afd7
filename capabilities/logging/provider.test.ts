import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { decode, encode, MemoryLogStore, LOGGING, canonicalContract } from '../../host/index.ts';
import type { LogRecord, ProviderContext } from '../../host/index.ts';
import { isOperationError } from '../errors.ts';
import { LoggingProvider, WASCC_LOG_LEVELS } from './provider.ts';

const ACTOR_A = 'MB4OLDIC3TCZ4Q4TGGOVAZC43VXFE2JQVRAXQMQFXUCREOOFEKOKZTY2';
const ACTOR_B = 'MASCXFM4R6X63UD5MSCDZYCJNPBVSIU6RKMXUPXRKAOSBQ6UY3VT3NPZ';

async function setup() {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'trace' }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  const logs = new MemoryLogStore();
  const ctx: ProviderContext = {
    hostId: 'NTESTHOST',
    logger,
    logs,
    invokeActor: async () => {
      throw new Error('not used');
    },
  };
  const provider = new LoggingProvider();
  await provider.start(ctx);
  const write = (actor: string, level: number, body: string) =>
    provider.handle({ actor, linkName: 'default', operation: 'WriteLog', msg: encode({ level, body }) });
  return { provider, lines, logs, write };
}

async function read(logs: MemoryLogStore, actor: string): Promise<LogRecord[]> {
  const out: LogRecord[] = [];
  for await (const r of logs.read(actor)) out.push(r);
  return out;
}

test('serves the logging contract and its waSCC alias', () => {
  const p = new LoggingProvider();
  assert.equal(p.contract, LOGGING);
  assert.equal(canonicalContract('wascc:logging'), p.contract);
});

test('WriteLog lines go to pino with the actor binding at the mapped level', async () => {
  const { lines, write } = await setup();
  const levels = Object.entries(WASCC_LOG_LEVELS);
  for (const [name, n] of levels) await write(ACTOR_A, n, `${name} line`);
  const pinoLevel: Record<string, number> = { error: 50, warn: 40, info: 30, debug: 20, trace: 10 };
  assert.equal(lines.length, levels.length);
  for (const [i, [name]] of levels.entries()) {
    assert.equal(lines[i]!.actor, ACTOR_A);
    assert.equal(lines[i]!.msg, `${name} line`);
    assert.equal(lines[i]!.level, pinoLevel[name], `level of ${name}`);
  }
});

test('WriteLog lines are kept per actor in the log store', async () => {
  const { logs, write } = await setup();
  const before = Date.now();
  await write(ACTOR_A, 1, 'a: boom');
  await write(ACTOR_B, 3, 'b: hello');
  await write(ACTOR_A, 5, 'a: detail');
  const a = await read(logs, ACTOR_A);
  assert.deepEqual(a.map((r) => [r.level, r.stream, r.msg]), [['error', 'log', 'a: boom'], ['trace', 'log', 'a: detail']]);
  assert.ok(a.every((r) => r.time >= before && r.time <= Date.now()));
  assert.deepEqual((await read(logs, ACTOR_B)).map((r) => r.msg), ['b: hello']);
});

test('the reply is an encoded empty map', async () => {
  const { write } = await setup();
  assert.deepEqual(decode(await write(ACTOR_A, 3, 'x')), {});
});

test('an unknown level keeps the line at info and records the number', async () => {
  const { lines, logs, write } = await setup();
  await write(ACTOR_A, 9, 'odd level');
  assert.equal(lines[0]!.level, 30);
  assert.equal(lines[0]!.wasccLevel, 9);
  assert.equal(lines[0]!.actor, ACTOR_A);
  assert.deepEqual((await read(logs, ACTOR_A)).map((r) => [r.level, r.msg]), [['info', 'odd level']]);
});

test('unknown operations and bad payloads are refused with OperationError and log nothing', async () => {
  const { provider, lines, logs } = await setup();
  const call = (operation: string, msg: Uint8Array) => provider.handle({ actor: ACTOR_A, linkName: 'default', operation, msg });
  await assert.rejects(call('Nope', encode({ level: 3, body: 'x' })), (e: unknown) => isOperationError(e) && e.code === 'UNKNOWN_OPERATION');
  await assert.rejects(call('WriteLog', new Uint8Array([0xc1])), (e: unknown) => isOperationError(e) && e.code === 'BAD_REQUEST');
  await assert.rejects(call('WriteLog', encode({ level: 'info', body: 'x' })), (e: unknown) => isOperationError(e) && /level/.test(e.message));
  await assert.rejects(call('WriteLog', encode({ level: 3 })), (e: unknown) => isOperationError(e) && /body/.test(e.message));
  assert.equal(lines.length, 0);
  assert.equal((await read(logs, ACTOR_A)).length, 0);
});
