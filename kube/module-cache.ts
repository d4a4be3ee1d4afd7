/**
 * Compiled modules by image digest, so a WASI image is compiled once however many pods and
 * restarts run it. Bytes that do not compile as a core module (components, corrupt files) map to
 * undefined: the actor path then gives the precise reason.
 */
import { detectWasi } from '../host/index.ts';

export interface CompiledImage {
  module: WebAssembly.Module | undefined;
  /** The module is a WASI command (run to completion), not an actor. */
  wasi: boolean;
}

export class ModuleCache {
  readonly #entries = new Map<string, Promise<CompiledImage>>();

  constructor(private readonly max = 64) {}

  get(digest: string, bytes: Uint8Array): Promise<CompiledImage> {
    const hit = this.#entries.get(digest);
    if (hit) {
      // Refresh its place: the map's order is the eviction order.
      this.#entries.delete(digest);
      this.#entries.set(digest, hit);
      return hit;
    }
    const p = WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>).then(
      (module) => ({ module, wasi: detectWasi(module) !== undefined }),
      () => ({ module: undefined, wasi: false }),
    );
    this.#entries.set(digest, p);
    if (this.#entries.size > this.max) this.#entries.delete(this.#entries.keys().next().value!);
    return p;
  }
}
