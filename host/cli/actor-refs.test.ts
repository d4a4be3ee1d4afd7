import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, open, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { isActorLoadError } from '../errors.ts';
import { readActorFile } from '../fs-util.ts';
import { loadActorRef, type ActorRefPolicy } from './actor-refs.ts';

let dir: string;
let allowed: string;
const pulled: string[] = [];
const sources = {
  registryOf: (ref: string) => ref.split('/')[0]!,
  pull: async (ref: string) => (pulled.push(ref), new Uint8Array(ref.endsWith(':huge') ? 2048 : 8)),
};
const policy = (over: Partial<ActorRefPolicy> = {}): ActorRefPolicy => ({ localFiles: allowed, registries: [], maxBytes: 1024, ...over });
const refused = (pattern: RegExp) => (err: unknown) => isActorLoadError(err) && pattern.test((err as Error).message);

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'wasmlet-refs-'));
  allowed = join(dir, 'actors');
  await mkdir(allowed);
  await writeFile(join(allowed, 'a.wasm'), Uint8Array.from([0, 97, 115, 109, 1, 0, 0, 0]));
  await symlink('/dev/zero', join(allowed, 'zero.wasm'));
  await symlink('/etc/passwd', join(allowed, 'passwd.wasm'));
  await writeFile(join(dir, 'outside.wasm'), 'x');
  await symlink(join(dir, 'outside.wasm'), join(allowed, 'escape.wasm'));
  execFileSync('mkfifo', [join(allowed, 'fifo.wasm')]);
  // A sparse file far over the cap: refused by its size, not read.
  const big = await open(join(allowed, 'big.wasm'), 'w');
  await big.truncate(10 * 1024 * 1024 * 1024);
  await big.close();
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('without --allow-local-files a host takes no file at all, whether or not it exists', async () => {
  for (const ref of ['/etc/shadow', '/etc/does-not-exist', '/dev/zero', './a.wasm', 'file:///etc/passwd']) {
    await assert.rejects(loadActorRef(ref, policy({ localFiles: undefined }), sources), refused(/does not take actor files .* --allow-local-files DIR/), ref);
  }
});

test('with --allow-local-files DIR: regular files under DIR only; existing and missing files outside answer the same', async () => {
  assert.deepEqual([...(await loadActorRef('a.wasm', policy(), sources))], [0, 97, 115, 109, 1, 0, 0, 0], 'relative to DIR');
  assert.equal((await loadActorRef(join(allowed, 'a.wasm'), policy(), sources)).byteLength, 8);
  assert.equal((await loadActorRef(`file://${join(allowed, 'a.wasm')}`, policy(), sources)).byteLength, 8);
  const outside = async (ref: string) => {
    let message = '';
    await assert.rejects(loadActorRef(ref, policy(), sources), (err: unknown) => ((message = (err as Error).message), isActorLoadError(err)));
    return message.replace(ref, 'REF');
  };
  assert.equal(await outside('/etc/shadow'), await outside('/etc/no-such-file'), 'the answer does not tell whether a file exists outside DIR');
  assert.match(await outside('../outside.wasm'), /outside the directory/);
  await assert.rejects(loadActorRef('zero.wasm', policy(), sources), refused(/leads outside the directory/), 'a link to /dev/zero');
  await assert.rejects(loadActorRef('passwd.wasm', policy(), sources), refused(/leads outside the directory/));
  await assert.rejects(loadActorRef('escape.wasm', policy(), sources), refused(/leads outside the directory/));
});

test('devices, FIFOs and oversized files are refused at once, without reading them', async () => {
  const t0 = Date.now();
  await assert.rejects(loadActorRef('fifo.wasm', policy(), sources), refused(/not a regular file/), 'a FIFO does not hang');
  await assert.rejects(loadActorRef('big.wasm', policy(), sources), refused(/10737418240 bytes, over the 1024-byte cap/));
  await assert.rejects(readActorFile('/dev/zero'), refused(/not a regular file/));
  await assert.rejects(readActorFile('/dev/urandom'), refused(/not a regular file/));
  await assert.rejects(readActorFile(allowed), refused(/not a regular file/), 'a directory');
  assert.ok(Date.now() - t0 < 2000, `refused in ${Date.now() - t0} ms`);
});

test('OCI references: from allowed registries only (any when none is listed), under the size cap', async () => {
  assert.equal((await loadActorRef('reg.example:5000/actors/kv:1', policy(), sources)).byteLength, 8);
  assert.equal((await loadActorRef('127.0.0.1:5000/kv:1', policy({ registries: ['127.0.0.1:5000'] }), sources)).byteLength, 8);
  pulled.length = 0;
  await assert.rejects(loadActorRef('attacker.example/kv:1', policy({ registries: ['127.0.0.1:5000'] }), sources), refused(/registry attacker\.example is not one this host pulls actors from/));
  assert.deepEqual(pulled, [], 'nothing was fetched');
  await assert.rejects(loadActorRef('127.0.0.1:5000/kv:huge', policy(), sources), refused(/2048 bytes, over the 1024-byte cap/));
});
