import assert from 'node:assert/strict';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { compileWat } from '../../test/helpers/wat.ts';

const compileWatBuffer = async (text: string) => (await compileWat(text)) as Uint8Array<ArrayBuffer>;
import { detectWasi, LineSplitter, runWasi, type WasiRunOptions } from './wasi.ts';

const fixture = new URL('../../../shared/fixtures/krustlet/hello-world.wasm', import.meta.url);

async function run(module: WebAssembly.Module, opts: Partial<WasiRunOptions> = {}) {
  const out = { stdout: '', stderr: '' };
  const d = new TextDecoder();
  const exit = await runWasi({ module, args: ['prog'], env: {}, preopens: {}, onOutput: (fd, data) => (fd === 1 ? (out.stdout += d.decode(data)) : (out.stderr += d.decode(data))), ...opts });
  return { ...exit, ...out };
}

/** Writes `text` to fd `fd`, then exits with `code`. */
function writeAndExit(fd: number, text: string, code: number, ns = 'wasi_snapshot_preview1') {
  return `(module
  (import "${ns}" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "${ns}" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) "${text}")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 100))
    (i32.store (i32.const 4) (i32.const ${Buffer.byteLength(text.replaceAll('\\n', '\n'))}))
    (drop (call $fd_write (i32.const ${fd}) (i32.const 0) (i32.const 1) (i32.const 8)))
    (call $proc_exit (i32.const ${code}))))`;
}

/** Opens `path` relative to preopened fd 3 and exits with the errno (0 = opened). */
function openAndExit(path: string) {
  return `(module
  (import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) "${path}")
  (func (export "_start")
    (call $proc_exit (call $path_open (i32.const 3) (i32.const 0) (i32.const 100) (i32.const ${Buffer.byteLength(path)})
      (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 0)))))`;
}

describe('WASI commands', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'wasmlet-wasi-'));
    await mkdir(join(dir, 'mount'));
    await writeFile(join(dir, 'mount', 'inside.txt'), 'ok');
    await writeFile(join(dir, 'secret.txt'), 'not for the guest');
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  it("runs Krustlet's hello-world (wasi_unstable) and captures its stdout", async () => {
    const module = new WebAssembly.Module(await readFile(fixture));
    assert.equal(detectWasi(module), 'unstable');
    const r = await run(module);
    assert.equal(r.exitCode, 0);
    assert.equal(r.stdout, 'Hello, world!\n');
    assert.equal(r.stderr, '');
  });

  it('reports a non-zero exit code and keeps stderr apart', async () => {
    const module = new WebAssembly.Module(await compileWatBuffer(writeAndExit(2, 'it broke\\n', 3)));
    assert.equal(detectWasi(module), 'preview1');
    const r = await run(module);
    assert.deepEqual([r.exitCode, r.stdout, r.stderr], [3, '', 'it broke\n']);
  });

  it('confines file access to the preopened directories', async () => {
    const opened = await run(new WebAssembly.Module(await compileWatBuffer(openAndExit('inside.txt'))), { preopens: { '/data': join(dir, 'mount') } });
    assert.equal(opened.exitCode, 0, 'a file inside the mount opens');
    for (const escape of ['../secret.txt', '/etc/passwd', 'sub/../../secret.txt']) {
      const r = await run(new WebAssembly.Module(await compileWatBuffer(openAndExit(escape))), { preopens: { '/data': join(dir, 'mount') } });
      assert.notEqual(r.exitCode, 0, `${escape} must not open`);
    }
  });

  it('stops a program that loops forever when asked', async () => {
    const module = new WebAssembly.Module(await compileWatBuffer(`(module (import "wasi_snapshot_preview1" "proc_exit" (func (param i32))) (memory (export "memory") 1) (func (export "_start") (loop $l (br $l))))`));
    const ac = new AbortController();
    const started = Date.now();
    setTimeout(() => ac.abort(), 300);
    const r = await run(module, { signal: ac.signal });
    assert.deepEqual([r.exitCode, r.reason], [137, 'stopped']);
    assert.ok(Date.now() - started < 3000);
  });

  it('refuses a module that is not a WASI command', async () => {
    const module = new WebAssembly.Module(await compileWatBuffer('(module (func (export "run")))'));
    assert.equal(detectWasi(module), undefined);
    await assert.rejects(runWasi({ module, args: [], env: {}, preopens: {}, onOutput: () => {} }), /not a WASI command/);
  });

  it('splits output into lines across chunk boundaries and multi-byte characters', () => {
    const s = new LineSplitter();
    const lines: string[] = [];
    const bytes = Buffer.from('héllo\r\nwor');
    s.push(bytes.subarray(0, 2), (l) => lines.push(l)); // splits the é
    s.push(bytes.subarray(2), (l) => lines.push(l));
    s.push(Buffer.from('ld\nlast'), (l) => lines.push(l));
    s.flush((l) => lines.push(l));
    assert.deepEqual(lines, ['héllo', 'world', 'last']);
  });
});
