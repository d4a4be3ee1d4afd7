/** Picks the runtime that recognises an actor's bytes and prepares it. */
import { ActorLoadError, isWasmletError } from '../errors.ts';
import { isComponentBinary } from './component.ts';
import { limitModuleMemory, pagesForMiB } from './memory-limit.ts';
import type { ActorRuntime, PrepareOptions, PreparedActor } from './runtime.ts';

/**
 * Compiles `bytes` once (a core module with its memory limit applied) and asks each runtime in
 * turn; rejects with ActorLoadError naming what was found.
 */
export async function prepareActor(runtimes: readonly ActorRuntime[], input: Uint8Array, options: PrepareOptions = {}): Promise<PreparedActor> {
  let module: WebAssembly.Module | undefined;
  let bytes = input;
  // A component is not a core module: do not spend a failed compile on it.
  if (!isComponentBinary(bytes)) {
    if (options.maxMemoryMiB !== undefined) {
      try {
        bytes = limitModuleMemory(bytes, pagesForMiB(options.maxMemoryMiB));
      } catch (err) {
        if (!isWasmletError(err)) throw err;
        if (err instanceof ActorLoadError) throw err;
        throw new ActorLoadError(`not a WebAssembly module this host can run: ${err.message}`, { cause: err });
      }
    }
    try {
      module = await WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>);
    } catch {
      module = undefined; // runtimes that take raw bytes may still claim it
    }
  }
  for (const rt of runtimes) {
    if (rt.detect(bytes, module)) return rt.prepare(bytes, module, options);
  }
  if (!module) throw new ActorLoadError('not a WebAssembly module this host can run (compile failed and no runtime recognised it)');
  const exports = WebAssembly.Module.exports(module).map((e) => e.name);
  throw new ActorLoadError(`unrecognised actor format: exports ${exports.join(', ') || 'nothing'}; expected a waPC actor (__guest_call)`);
}
