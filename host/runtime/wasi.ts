/**
 * WASI command modules (Krustlet's wasi-provider): run to completion with node:wasi, each in its
 * own worker, with args, env and preopened directories; stdout/stderr are streamed to the caller.
 */
import { Worker } from 'node:worker_threads';
import { ActorLoadError } from '../errors.ts';
import type { WasiWorkerInit, WasiWorkerMessage } from '../worker/wasi-worker.ts';

export type WasiVersion = 'preview1' | 'unstable';

/** `preview1` or `unstable` from the module's imports; undefined when it is not a WASI command. */
export function detectWasi(module: WebAssembly.Module): WasiVersion | undefined {
  const exports = WebAssembly.Module.exports(module);
  if (!exports.some((e) => e.name === '_start' && e.kind === 'function')) return undefined;
  const mods = new Set(WebAssembly.Module.imports(module).map((i) => i.module));
  if (mods.has('wasi_snapshot_preview1')) return 'preview1';
  if (mods.has('wasi_unstable')) return 'unstable';
  return mods.size === 0 ? 'preview1' : undefined;
}

export interface WasiRunOptions {
  module: WebAssembly.Module;
  /** argv, including argv[0] (the program name). */
  args: string[];
  env: Record<string, string>;
  /** Guest path → host directory. Nothing else of the host's file system is reachable. */
  preopens: Record<string, string>;
  /** Called with each chunk written to stdout (1) or stderr (2). */
  onOutput(fd: 1 | 2, data: Uint8Array): void;
  /** Aborting stops the program at once (its worker is terminated). */
  signal?: AbortSignal;
}

export interface WasiExit {
  /** The program's exit code; 137 when it was stopped. */
  exitCode: number;
  /** Why it ended when it did not exit by itself. */
  reason?: 'stopped' | 'trap';
  message?: string;
}

const BOOTSTRAP = new URL('../worker/wasi-bootstrap.mjs', import.meta.url);

/** Runs a WASI command to completion. Resolves with its exit; rejects only if the module is not a WASI command. */
export function runWasi(options: WasiRunOptions): Promise<WasiExit> {
  const version = detectWasi(options.module);
  if (!version) return Promise.reject(new ActorLoadError('not a WASI command module: it must export _start and import wasi_snapshot_preview1 or wasi_unstable'));
  if (options.signal?.aborted) return Promise.resolve({ exitCode: 137, reason: 'stopped' });
  const init: WasiWorkerInit = { module: options.module, version, args: options.args, env: options.env, preopens: options.preopens };
  const worker = new Worker(BOOTSTRAP, { workerData: init, stdout: true, stderr: true });
  return new Promise<WasiExit>((resolve) => {
    let settled = false;
    const settle = (exit: WasiExit) => {
      if (settled) return;
      settled = true;
      options.signal?.removeEventListener('abort', onAbort);
      void worker.terminate();
      resolve(exit);
    };
    const onAbort = () => settle({ exitCode: 137, reason: 'stopped' });
    options.signal?.addEventListener('abort', onAbort, { once: true });
    worker.on('message', (m: WasiWorkerMessage) => {
      if (settled) return;
      if (m.t === 'out') options.onOutput(m.fd, m.data);
      else if (m.t === 'exit') settle({ exitCode: m.code });
      else settle({ exitCode: 1, reason: 'trap', message: m.message });
    });
    worker.on('error', (err) => settle({ exitCode: 1, reason: 'trap', message: err.message }));
    worker.on('exit', (code) => settle({ exitCode: code === 0 ? 0 : 1, reason: 'trap', message: `worker exited with code ${code}` }));
  });
}

/** Splits a byte stream into lines (a trailing partial line waits for more, or for `flush`). */
export class LineSplitter {
  #rest = '';
  readonly #decoder = new TextDecoder();
  push(data: Uint8Array, emit: (line: string) => void): void {
    const text = this.#rest + this.#decoder.decode(data, { stream: true });
    const lines = text.split('\n');
    this.#rest = lines.pop()!;
    for (const l of lines) emit(l.endsWith('\r') ? l.slice(0, -1) : l);
  }
  flush(emit: (line: string) => void): void {
    const tail = this.#rest + this.#decoder.decode();
    this.#rest = '';
    if (tail) emit(tail);
  }
}

