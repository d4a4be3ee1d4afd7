/**
 * The TypeScript loader (tsx, which runs wasmlet's sources) compiles with esbuild's `keepNames`:
 * every arrow function it sees assigned to a name or property is wrapped in
 * `__name(fn, "x")`, an `Object.defineProperty` on the new function. V8 takes a slow path for that
 * (the function goes to dictionary mode): a closure made per call on a hot path cost ~11% of an
 * actor worker's CPU in the key-value benchmark. This checks the compiled hot functions, as the
 * loader compiles them, for such wrappers.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { transformSync } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));

/** Per source file, the functions and methods that run per call, per request or per batch. */
const HOT: Record<string, string[]> = {
  'capabilities/keyvalue/operations.ts': ['prepareOperation', 'request'],
  'capabilities/http-server/http-codec.ts': ['requestHeaders', 'encodeHttpRequest', 'toHttpResponse'],
  'capabilities/http-server/actor-server.ts': ['invoke', 'respond'],
  'host/msgpack-writer.ts': ['str', 'bin', 'num'],
  'host/lattice/envelope.ts': ['encodeItem', 'batchPrefix', 'frameBatch', 'decodeBatch', 'checkItems', 'checkItem'],
  'host/lattice/replies.ts': ['frameReplyBatch', 'readReplyBatch', 'decodeReply'],
  'host/lattice/outbound-calls.ts': ['#flush', '#sendBatches', '#publish', 'onReply', '#settle'],
  'host/lattice/nats-bus.ts': ['#onInvocation', '#sendReplies'],
  'host/worker/worker-main.ts': ['runCall', 'runItems'],
  'host/worker/worker-pool.ts': ['#send', '#enqueue', '#drainResults', '#onMessage', '#finish'],
  'capabilities/messaging/provider.ts': ['onMessage', '#run', 'deliver', 'handle'],
  'capabilities/messaging/codec.ts': ['encodeDelivery', 'parsePublish'],
  'capabilities/messaging/broker.ts': ['publish'],
  'capabilities/messaging/nats-broker.ts': ['publish'],
};

function compiled(file: string): string {
  return transformSync(readFileSync(join(root, file), 'utf8'), { loader: 'ts', format: 'esm', keepNames: true, target: 'node20' }).code;
}

/** Index just past the bracket that closes the one at `open` (strings and templates skipped roughly). */
function matching(src: string, open: number): number {
  const pairs: Record<string, string> = { '(': ')', '{': '}' };
  const stack = [pairs[src[open]!]!];
  let i = open + 1;
  while (i < src.length && stack.length) {
    const c = src[i]!;
    if (c === '"' || c === "'" || c === '`') {
      const q = c;
      i++;
      while (i < src.length && src[i] !== q) i += src[i] === '\\' ? 2 : 1;
    } else if (c === '(' || c === '{') stack.push(pairs[c]!);
    else if (c === ')' || c === '}') {
      if (stack.pop() !== c) throw new Error(`unbalanced ${c} at ${i}`);
    }
    i++;
  }
  return i;
}

/** The body of function or method `name` in compiled `src`. */
function body(src: string, name: string): string {
  const escaped = name.replace(/[#$]/g, '\\$&');
  const decl = new RegExp(`(?:^|\\n)\\s*(?:export\\s+)?(?:async\\s+)?(?:function\\s+)?${escaped}\\s*\\(`).exec(src);
  assert.ok(decl, `function ${name} not found`);
  const paramsOpen = decl.index + decl[0].length - 1;
  const bodyOpen = src.indexOf('{', matching(src, paramsOpen));
  return src.slice(bodyOpen, matching(src, bodyOpen));
}

test('hot functions make no named closures per call (as the TypeScript loader compiles them)', () => {
  for (const [file, names] of Object.entries(HOT)) {
    const src = compiled(file);
    for (const name of names) {
      const wrapped = body(src, name).match(/__name\([^]{0,80}/g) ?? [];
      assert.deepEqual(wrapped, [], `${file}: ${name} names a closure on every call`);
    }
  }
});

test('the check finds a named closure in a function', () => {
  const src = transformSync('export function f(a: number) { const g = () => a; return { run: (x: number) => x + g() }; }', { loader: 'ts', keepNames: true }).code;
  assert.equal(body(src, 'f').match(/__name\(/g)?.length, 2);
});
