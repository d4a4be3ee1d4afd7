/**
 * Runs one WASI command module to completion inside its own worker thread, so the host can
 * stop it at any moment (pod deleted) by terminating the worker. stdout and stderr are taken at
 * `fd_write` and posted to the main thread as they are written; other descriptors go to node:wasi,
 * whose file access is confined to the preopened directories.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { WASI } from 'node:wasi';

export interface WasiWorkerInit {
  module: WebAssembly.Module;
  version: 'preview1' | 'unstable';
  args: string[];
  env: Record<string, string>;
  preopens: Record<string, string>;
}

export type WasiWorkerMessage = { t: 'out'; fd: 1 | 2; data: Uint8Array } | { t: 'exit'; code: number } | { t: 'error'; message: string };

const init = workerData as WasiWorkerInit;
const port = parentPort!;

process.removeAllListeners('warning'); // node:wasi's "experimental" warning is not the program's output

const wasi = new WASI({ version: init.version, args: init.args, env: init.env, preopens: init.preopens, returnOnExit: true });
const imports = wasi.getImportObject() as Record<string, Record<string, unknown>>;
const ns = init.version === 'unstable' ? 'wasi_unstable' : 'wasi_snapshot_preview1';
const original = imports[ns]!.fd_write as (fd: number, iovs: number, iovsLen: number, nwritten: number) => number;
let memory: WebAssembly.Memory | undefined;

imports[ns]!.fd_write = (fd: number, iovs: number, iovsLen: number, nwritten: number): number => {
  if ((fd !== 1 && fd !== 2) || !memory) return original(fd, iovs, iovsLen, nwritten);
  const view = new DataView(memory.buffer);
  const bytes = new Uint8Array(memory.buffer);
  let total = 0;
  const parts: Uint8Array[] = [];
  for (let i = 0; i < iovsLen; i++) {
    const ptr = view.getUint32(iovs + i * 8, true);
    const len = view.getUint32(iovs + i * 8 + 4, true);
    if (len) parts.push(bytes.slice(ptr, ptr + len));
    total += len;
  }
  if (total) {
    const data = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
    port.postMessage({ t: 'out', fd, data } satisfies WasiWorkerMessage);
  }
  view.setUint32(nwritten, total, true);
  return 0; // ESUCCESS
};

try {
  const instance = new WebAssembly.Instance(init.module, imports as WebAssembly.Imports);
  memory = instance.exports.memory as WebAssembly.Memory;
  const code = wasi.start(instance);
  port.postMessage({ t: 'exit', code } satisfies WasiWorkerMessage);
} catch (err) {
  port.postMessage({ t: 'error', message: err instanceof Error ? err.message : String(err) } satisfies WasiWorkerMessage);
}
