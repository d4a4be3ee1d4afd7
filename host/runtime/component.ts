/**
 * Components (Component Model, WIT world `wasmlet:actor`), the format of the TypeScript actors
 * SDK. A component is transpiled with jco (in a worker thread, see component-transpile.ts) once
 * per digest into an on-disk cache (instantiation glue, rewritten for speed by
 * component-glue.ts, plus the core modules); the main thread compiles the core modules once per
 * process and hands the compiled `WebAssembly.Module`s (shared, not copied, between workers) and
 * the glue's URL to the workers, where `componentGuestFactory` instantiates them.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import { CLAIMS_SECTIONS, computeModuleHash } from '../claims/claims.ts';
import { stripCustomSections } from '../claims/wasm-sections.ts';
import { ActorLoadError } from '../errors.ts';
import { parseWith } from '../options.ts';
import { GLUE_REVISION, optimizeGlue } from './component-glue.ts';
import type { ComponentPayload } from './component-guest.ts';
import { JCO_VERSION, transpileOffThread, type TranspileOptions, type TranspileOutput } from './component-transpile.ts';
import { HTTP_HANDLER_EXPORT, SUPPORTED_IMPORTS } from './component-world.ts';
import { limitModuleMemory, pagesForMiB } from './memory-limit.ts';
import type { ActorRuntime, PrepareOptions, PreparedActor } from './runtime.ts';

export { JCO_VERSION };

const PREAMBLE = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];
const GLUE_NAME = 'component';
const META_FILE = 'meta.json';

/** Synchronous instantiation (the worker instantiates compiled modules itself); no .d.ts files. */
const TRANSPILE_OPTIONS: TranspileOptions = { name: GLUE_NAME, instantiation: 'sync', quiet: true, typescript: false };

/**
 * What the cached files depend on besides the component: the jco version, its options and the
 * glue rewrites. Part of the cache folder's name, so output of another jco or rewrite is never reused.
 */
export const GLUE_FORMAT = createHash('sha256')
  .update(JSON.stringify({ jco: JCO_VERSION, options: TRANSPILE_OPTIONS, glue: GLUE_REVISION }))
  .digest('hex')
  .slice(0, 12);

/** True for a Component Model binary (preamble `\0asm 0d 00 01 00`). */
export function isComponentBinary(bytes: Uint8Array): boolean {
  return bytes.length >= PREAMBLE.length && PREAMBLE.every((b, i) => bytes[i] === b);
}

const optionsSchema = z.strictObject({
  /** Where transpiled components are kept, one folder per digest. Default `.cache/wasmlet/components` under the current directory. */
  cacheDir: z.string().min(1).optional(),
});

export type ComponentRuntimeOptions = z.input<typeof optionsSchema>;

export function parseComponentRuntimeOptions(input: unknown = {}): ComponentRuntimeOptions {
  return parseWith(optionsSchema, 'component runtime options', input);
}

export const DEFAULT_COMPONENT_CACHE_DIR = join('.cache', 'wasmlet', 'components');

interface CacheMeta {
  digest: string;
  jco: string;
  /** GLUE_FORMAT when written. */
  format: string;
  glue: string;
  coreModules: string[];
  imports: string[];
  exports: string[];
}

interface Prepared {
  glueUrl: string;
  modules: Record<string, WebAssembly.Module>;
  meta: CacheMeta;
}

export interface ComponentRuntime extends ActorRuntime {
  /** The cache folder in use (absolute). */
  readonly cacheDir: string;
  /** Work done since creation: components transpiled (cache misses on disk) and core-module sets compiled. */
  stats(): { transpiled: number; compiled: number };
}

/** Makes a component runtime with its own cache folder and in-memory compiled-module cache. */
export function createComponentRuntime(options: ComponentRuntimeOptions = {}): ComponentRuntime {
  const opts = parseComponentRuntimeOptions(options);
  let cacheDir: string | undefined = opts.cacheDir && resolve(opts.cacheDir);
  const dir = () => (cacheDir ??= resolve(DEFAULT_COMPONENT_CACHE_DIR));
  const memo = new Map<string, Promise<Prepared>>();
  const counters = { transpiled: 0, compiled: 0 };

  /** The folder's meta when it is complete and of this format; undefined otherwise (then it is written again). */
  async function readMeta(folder: string, digest: string): Promise<CacheMeta | undefined> {
    try {
      const meta = JSON.parse(await readFile(join(folder, META_FILE), 'utf8')) as CacheMeta;
      return meta.digest === digest && meta.format === GLUE_FORMAT && Array.isArray(meta.coreModules) ? meta : undefined;
    } catch {
      return undefined;
    }
  }

  async function transpileInto(folder: string, digest: string, bytes: Uint8Array): Promise<CacheMeta> {
    let out: TranspileOutput;
    try {
      out = await transpileOffThread(stripCustomSections(bytes, CLAIMS_SECTIONS), TRANSPILE_OPTIONS);
    } catch (err) {
      throw new ActorLoadError(`cannot transpile the component with jco: ${(err as Error).message ?? String(err)}`, { cause: err });
    }
    const exports = out.exports.map(([name]) => name);
    if (!exports.includes(HTTP_HANDLER_EXPORT)) {
      throw new ActorLoadError(`component actor must export ${HTTP_HANDLER_EXPORT} (build it with the wasmlet actors SDK); it exports ${exports.join(', ') || 'nothing'}`);
    }
    const unsupported = out.imports.filter((i) => !SUPPORTED_IMPORTS.has(i));
    if (unsupported.length) {
      throw new ActorLoadError(`component actor imports what the host does not provide: ${unsupported.join(', ')}`);
    }
    const glue = `${GLUE_NAME}.js`;
    const coreModules = Object.keys(out.files).filter((f) => f.endsWith('.wasm'));
    const meta: CacheMeta = { digest, jco: JCO_VERSION, format: GLUE_FORMAT, glue, coreModules, imports: out.imports, exports };
    // Write a complete folder under a temporary name, then rename: readers never see half of one.
    await mkdir(dir(), { recursive: true });
    const tmp = join(dir(), `.tmp-${randomBytes(6).toString('hex')}`);
    try {
      await mkdir(tmp);
      await writeFile(join(tmp, 'package.json'), '{"type":"module"}\n');
      await writeFile(join(tmp, glue), optimizeGlue(Buffer.from(out.files[glue]!).toString('utf8')));
      for (const f of coreModules) await writeFile(join(tmp, f), out.files[f]!);
      await writeFile(join(tmp, META_FILE), JSON.stringify(meta, null, 2));
      try {
        await rename(tmp, folder);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
        // Another host transpiled it first: use theirs.
        const theirs = await readMeta(folder, digest);
        if (theirs) return theirs;
        throw err;
      }
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
    counters.transpiled++;
    return meta;
  }

  /** Transpiled output of a digest, once per process. */
  const transpiled = new Map<string, Promise<{ folder: string; meta: CacheMeta }>>();

  function transpileOnce(digest: string, bytes: Uint8Array): Promise<{ folder: string; meta: CacheMeta }> {
    let t = transpiled.get(digest);
    if (!t) {
      const folder = join(dir(), `${digest.toLowerCase()}-jco${JCO_VERSION}-${GLUE_FORMAT}`);
      t = (async () => ({ folder, meta: (await readMeta(folder, digest)) ?? (await transpileInto(folder, digest, bytes)) }))();
      transpiled.set(digest, t);
      t.catch(() => transpiled.delete(digest));
    }
    return t;
  }

  /** The core modules compiled, every memory they define limited to `maxPages` (when set). */
  async function load(digest: string, bytes: Uint8Array, maxPages: number | undefined): Promise<Prepared> {
    const { folder, meta } = await transpileOnce(digest, bytes);
    const modules: Record<string, WebAssembly.Module> = {};
    await Promise.all(
      meta.coreModules.map(async (f) => {
        let core: Uint8Array = await readFile(join(folder, f)).catch((err: Error) => {
          throw new ActorLoadError(`cannot read the component's core module ${f} (cache ${folder}): ${err.message}`, { cause: err });
        });
        if (maxPages !== undefined) core = limitModuleMemory(core, maxPages);
        try {
          modules[f] = await WebAssembly.compile(core as Uint8Array<ArrayBuffer>);
        } catch (err) {
          throw new ActorLoadError(`cannot compile the component's core modules (cache ${folder}): ${(err as Error).message}`, { cause: err });
        }
      }),
    );
    counters.compiled++;
    return { glueUrl: pathToFileURL(join(folder, meta.glue)).href, modules, meta };
  }

  return {
    kind: 'component',
    get cacheDir() {
      return dir();
    },
    stats: () => ({ ...counters }),
    detect(bytes, module) {
      return module === undefined && isComponentBinary(bytes);
    },
    async prepare(bytes, _module, options: PrepareOptions = {}): Promise<PreparedActor> {
      if (!isComponentBinary(bytes)) throw new ActorLoadError('not a WebAssembly component (expected the preamble \\0asm 0d 00 01 00)');
      let digest: string;
      try {
        digest = computeModuleHash(bytes);
      } catch (err) {
        throw new ActorLoadError(`not a component this host can run: ${(err as Error).message}`, { cause: err });
      }
      const maxPages = options.maxMemoryMiB === undefined ? undefined : pagesForMiB(options.maxMemoryMiB);
      // Compiled modules depend on the limit their memories carry.
      const key = `${digest}/${maxPages ?? 'unlimited'}`;
      let entry = memo.get(key);
      if (!entry) {
        entry = load(digest, bytes, maxPages);
        memo.set(key, entry);
        entry.catch(() => memo.delete(key));
      }
      const { glueUrl, modules } = await entry;
      const payload: ComponentPayload = { glueUrl, modules, digest };
      return { kind: 'component', payload };
    },
  };
}

/** The component runtime with the default cache folder. */
export const componentRuntime: ComponentRuntime = createComponentRuntime();
