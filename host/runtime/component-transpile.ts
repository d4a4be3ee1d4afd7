/**
 * Runs jco's transpile in a short-lived worker thread. Transpiling a StarlingMonkey component
 * takes seconds of synchronous WebAssembly (jco's bindings generator), which on the main thread
 * would stall every actor the host serves; the worker also takes the generator's memory (a
 * wasm heap that never shrinks) away with it when it exits.
 */
import { Worker } from 'node:worker_threads';
import { packageVersion } from '../fs-util.ts';
import { restoreCoreModules, stubComponent, type StubbedComponent } from './component-stub.ts';

export const JCO_VERSION = packageVersion('@bytecodealliance/jco');

export interface TranspileOptions {
  name: string;
  instantiation: 'sync' | 'async';
  quiet: boolean;
  /** jco ≥ 1.15 spells "no .d.ts files" this way. */
  typescript: boolean;
}

export interface TranspileOutput {
  /** Only the glue (`<name>.js`) and the core modules (`*.wasm`). */
  files: Record<string, Uint8Array>;
  /** Interfaces the component imports, without versions (e.g. `wasi:io/poll`). */
  imports: string[];
  /** `[name, kind]`, e.g. `['wasmlet:actor/http-handler@0.1.0', 'instance']`. */
  exports: Array<[string, string]>;
}

/** Plain JavaScript (an eval worker needs no loader): imports jco by URL, transpiles, posts the files back. */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
(async () => {
  const { transpile } = await import(workerData.jco);
  const out = await transpile(workerData.bytes, workerData.options);
  const files = {};
  const buffers = new Set();
  for (const [name, data] of Object.entries(out.files)) {
    if (!name.endsWith('.wasm') && name !== workerData.glue) continue;
    const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
    files[name] = bytes;
    buffers.add(bytes.buffer);
  }
  parentPort.postMessage({ ok: { files, imports: out.imports, exports: out.exports } }, [...buffers]);
})().catch((err) => {
  parentPort.postMessage({ error: (err && err.message) || String(err) });
});
`;

/**
 * Transpiles `component` with jco in a worker thread; rejects with jco's message when it cannot.
 * jco is given the component with its large core modules stubbed (see component-stub.ts), and
 * the real modules go back into the output; if jco did not copy a stub out verbatim, the whole
 * component is transpiled as it is.
 */
export async function transpileOffThread(component: Uint8Array, options: TranspileOptions): Promise<TranspileOutput> {
  let stubbed: StubbedComponent | undefined;
  try {
    stubbed = stubComponent(component);
  } catch {
    stubbed = undefined; // not something the stubber reads: jco will say what is wrong with it
  }
  if (!stubbed || stubbed.originals.size === 0) return transpileInWorker(component, options);
  const out = await transpileInWorker(stubbed.component, options);
  const files = restoreCoreModules(out.files, stubbed.originals);
  return files ? { ...out, files } : transpileInWorker(component, options);
}

function transpileInWorker(component: Uint8Array, options: TranspileOptions): Promise<TranspileOutput> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      // No loader hooks or preloads: the worker runs plain JavaScript from node_modules.
      execArgv: [],
      workerData: { jco: import.meta.resolve('@bytecodealliance/jco'), bytes: component, options, glue: `${options.name}.js` },
      stdout: true,
      stderr: true,
    });
    // jco is told to be quiet; anything it prints anyway is dropped (library code never writes to the console).
    worker.stdout.resume();
    worker.stderr.resume();
    let settled = false;
    const done = (fn: () => void) => {
      if (settled) return;
      settled = true;
      fn();
      void worker.terminate();
    };
    worker.on('message', (m: { ok?: TranspileOutput; error?: string }) => {
      done(() => (m.ok ? resolve(m.ok) : reject(new Error(m.error ?? 'jco failed without a message'))));
    });
    worker.on('error', (err) => done(() => reject(err)));
    worker.on('exit', (code) => done(() => reject(new Error(`the transpile worker exited (code ${code}) without an answer`))));
  });
}
