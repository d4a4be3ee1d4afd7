/**
 * Worker side of component actors: imports the transpiled glue once per worker (the async
 * `load` step), then instantiates the shared compiled core modules with the world's imports.
 * A `crashed` answer (an exception the actor did not handle) or a wasm trap is thrown as a
 * plain Error, so the worker discards the instance; a `failed` answer is a GuestError and the
 * instance (with its state) is kept.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { compileFunction } from 'node:vm';
import { encodeWitResponse, OP_HANDLE_REQUEST, toWitRequest, type WitRequest, type WitResponse } from './component-http.ts';
import { flushStderr, wasiImports } from './component-wasi.ts';
import { HTTP_HANDLER_EXPORT, MESSAGE_HANDLER_EXPORT, worldImports } from './component-world.ts';
import { NIL_REPLY, OP_DELIVER_MESSAGE, toWitMessage, type WitMessage } from './component-messaging.ts';
import { GuestError, type GuestEnv, type GuestFactory, type GuestInstance } from './runtime.ts';

/** What the main thread sends (structured-cloneable). */
export interface ComponentPayload {
  /** file: URL of the transpiled ES module glue. */
  glueUrl: string;
  /** Compiled core modules by the file name the glue asks for. */
  modules: Record<string, WebAssembly.Module>;
  /** Digest of the component (its claims hash). */
  digest: string;
  /** Config values, when the host hands them in the payload rather than the worker's env. */
  config?: Record<string, string>;
}

type Instantiate = (
  getCoreModule: (name: string) => WebAssembly.Module,
  imports: Record<string, Record<string, unknown>>,
  instantiateCore?: (module: WebAssembly.Module, imports?: WebAssembly.Imports) => WebAssembly.Instance,
) => Record<string, unknown>;

interface LoadedComponent extends ComponentPayload {
  instantiate: Instantiate;
}

interface HttpHandlerExport {
  handleRequest(request: WitRequest): WitResponse;
}

interface MessageHandlerExport {
  handleMessage(message: WitMessage): void;
}

/** A JS exception the actor did not handle, or a trap: the instance must go. */
export class ComponentCrash extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ComponentCrash';
  }
}

function payloadOf(e: unknown): { tag?: unknown; val?: unknown } | undefined {
  const p = (e as { payload?: unknown } | null)?.payload;
  return p && typeof p === 'object' ? (p as { tag?: unknown; val?: unknown }) : undefined;
}

const INSTANTIATE_EXPORT = 'export function instantiate(';

/** Compiled glue by URL, once per worker (actors of one component share it). */
const glues = new Map<string, Promise<Instantiate>>();

/**
 * jco's instantiation glue is an ES module that imports nothing and exports only `instantiate`.
 * Compiled as a plain (strict) function body it skips the ES module loader, which in a worker
 * (whose loader hooks run TypeScript) costs 10–20 ms of an actor's first call. Glue of any other
 * shape is imported as the module it is.
 */
async function compileGlue(url: string): Promise<Instantiate> {
  const path = fileURLToPath(url);
  const source = await readFile(path, 'utf8');
  const at = source.indexOf(INSTANTIATE_EXPORT);
  const rest = at < 0 ? '' : source.slice(0, at) + source.slice(at + INSTANTIATE_EXPORT.length);
  if (at >= 0 && !/^\s*(?:import|export)\b|\bimport\s*(?:\(|\.meta)/m.test(rest)) {
    try {
      const body = `'use strict';\n${source.slice(0, at)}function instantiate(${source.slice(at + INSTANTIATE_EXPORT.length)}\nreturn instantiate;`;
      const instantiate = compileFunction(body, [], { filename: path })() as unknown;
      if (typeof instantiate === 'function') return instantiate as Instantiate;
    } catch (err) {
      if (!(err instanceof SyntaxError)) throw err;
    }
  }
  const glue = (await import(url)) as { instantiate?: unknown };
  if (typeof glue.instantiate !== 'function') throw new Error(`component glue ${url} has no instantiate export`);
  return glue.instantiate as Instantiate;
}

export const componentGuestFactory: GuestFactory = {
  kind: 'component',

  async load(payload: unknown): Promise<LoadedComponent> {
    const p = payload as ComponentPayload;
    let glue = glues.get(p.glueUrl);
    if (!glue) {
      glue = compileGlue(p.glueUrl);
      glues.set(p.glueUrl, glue);
      glue.catch(() => glues.delete(p.glueUrl));
    }
    return { ...p, instantiate: await glue };
  },

  instantiate(payload: unknown, env: GuestEnv): GuestInstance {
    const loaded = payload as LoadedComponent;
    if (typeof loaded.instantiate !== 'function') throw new Error('component actor was not loaded in this worker (its glue was never imported)');
    const stderrLines: string[] = [];
    const imports = {
      ...wasiImports((line) => {
        stderrLines.push(line);
        env.log('error', line);
      }),
      ...worldImports(env, env.config ?? loaded.config ?? {}),
    };
    // The memories the core instances define, to tell how much linear memory the instance holds.
    const memories: WebAssembly.Memory[] = [];
    const exports = loaded.instantiate(
      (name) => {
        const m = loaded.modules[name];
        if (!m) throw new Error(`component glue asked for core module ${name}, which the host did not compile`);
        return m;
      },
      imports,
      (module, importObject) => {
        const instance = new WebAssembly.Instance(module, importObject);
        for (const e of Object.values(instance.exports)) if (e instanceof WebAssembly.Memory && !memories.includes(e)) memories.push(e);
        return instance;
      },
    );
    const handler = exports[HTTP_HANDLER_EXPORT] as HttpHandlerExport | undefined;
    if (!handler || typeof handler.handleRequest !== 'function') throw new Error(`component does not export ${HTTP_HANDLER_EXPORT}`);

    const messages = exports[MESSAGE_HANDLER_EXPORT] as MessageHandlerExport | undefined;
    /** Runs an export: `failed` is the actor's error answer, anything else thrown a crash. */
    const guard = <T>(run: () => T): T => {
      stderrLines.length = 0;
      try {
        return run();
      } catch (e) {
        const p = payloadOf(e);
        if (p?.tag === 'failed') throw new GuestError(String(p.val));
        if (p?.tag === 'crashed') throw new ComponentCrash(`actor threw: ${String(p.val)}`, { cause: e });
        flushStderr(imports);
        const why = e instanceof Error ? e.message : String(e);
        const said = stderrLines.length ? ` (${stderrLines.slice(-5).join(' | ')})` : '';
        throw new ComponentCrash(`${why}${said}`, { cause: e });
      }
    };

    return {
      call(operation: string, msg: Uint8Array): Uint8Array {
        if (operation === OP_HANDLE_REQUEST) {
          const request = toWitRequest(msg);
          return encodeWitResponse(guard(() => handler.handleRequest(request)));
        }
        if (operation === OP_DELIVER_MESSAGE) {
          if (!messages || typeof messages.handleMessage !== 'function') throw new GuestError(`this component does not export ${MESSAGE_HANDLER_EXPORT} (rebuild it with the current actors SDK)`);
          const message = toWitMessage(msg);
          guard(() => messages.handleMessage(message));
          return NIL_REPLY;
        }
        throw new GuestError(`component actors answer ${OP_HANDLE_REQUEST} and ${OP_DELIVER_MESSAGE} only; no handler for operation ${operation}`);
      },
      memoryBytes(): number {
        let n = 0;
        for (const m of memories) n += m.buffer.byteLength;
        return n;
      },
    };
  },
};
