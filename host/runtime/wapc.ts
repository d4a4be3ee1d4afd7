/**
 * waPC core modules (waSCC actors): imports from module `wapc`, export `__guest_call`.
 * See https://wapc.io for the ABI. The main-thread side validates and compiles; the
 * worker side (`wapcGuestFactory`) instantiates with the host's imports.
 */
import { ActorLoadError } from '../errors.ts';
import { GuestError, hostCallTooLarge, ResponseTooLarge, type ActorRuntime, type GuestEnv, type GuestFactory, type GuestInstance, type PreparedActor } from './runtime.ts';

const WAPC_IMPORTS = new Set([
  '__guest_request',
  '__guest_response',
  '__guest_error',
  '__host_call',
  '__host_response_len',
  '__host_response',
  '__host_error_len',
  '__host_error',
  '__console_log',
]);

/** Imports from outside `wapc` that waPC guests commonly carry and we satisfy. */
const EXTRA_IMPORTS: Record<string, Set<string>> = {
  env: new Set(['abort']), // AssemblyScript
};

export interface WapcPayload {
  module: WebAssembly.Module;
}

export const wapcRuntime: ActorRuntime = {
  kind: 'wapc',
  detect(_bytes, module) {
    if (!module) return false;
    return WebAssembly.Module.exports(module).some((e) => e.name === '__guest_call' && e.kind === 'function');
  },
  async prepare(_bytes, module): Promise<PreparedActor> {
    if (!module) throw new ActorLoadError('not a core WebAssembly module');
    const exports = WebAssembly.Module.exports(module);
    if (!exports.some((e) => e.name === '__guest_call' && e.kind === 'function')) {
      throw new ActorLoadError('waPC actor must export function __guest_call');
    }
    if (!exports.some((e) => e.name === 'memory' && e.kind === 'memory')) {
      throw new ActorLoadError('waPC actor must export its memory as "memory"');
    }
    const unsupported = WebAssembly.Module.imports(module).filter(
      (i) => !(i.module === 'wapc' && WAPC_IMPORTS.has(i.name)) && !EXTRA_IMPORTS[i.module]?.has(i.name),
    );
    if (unsupported.length) {
      const names = unsupported.map((i) => `${i.module}.${i.name}`).join(', ');
      throw new ActorLoadError(`waPC actor imports what the host does not provide: ${names}`);
    }
    const payload: WapcPayload = { module };
    return { kind: 'wapc', payload };
  },
};

const utf8 = new TextEncoder();
const utf8d = new TextDecoder();

export const wapcGuestFactory: GuestFactory = {
  kind: 'wapc',
  instantiate(payload, env: GuestEnv): GuestInstance {
    const { module } = payload as WapcPayload;
    let memory: WebAssembly.Memory | undefined;
    let view = new Uint8Array(0);
    const mem = (): Uint8Array => {
      // The view goes stale when memory grows; re-create it only then.
      if (view.buffer !== memory!.buffer) view = new Uint8Array(memory!.buffer);
      return view;
    };
    const str = (ptr: number, len: number) => utf8d.decode(mem().subarray(ptr, ptr + len));

    let opBytes: Uint8Array = new Uint8Array(0);
    let msgBytes: Uint8Array = new Uint8Array(0);
    let guestResponse: Uint8Array | undefined;
    /** Length of a response past the cap (not copied), or 0. */
    let guestResponseTooLarge = 0;
    let guestError: string | undefined;
    const { hostCallBytes, responseBytes } = env.limits;
    let hostResponse: Uint8Array | undefined;
    let hostError: Uint8Array | undefined;

    const wapc = {
      __guest_request(opPtr: number, ptr: number) {
        const m = mem();
        m.set(opBytes, opPtr);
        m.set(msgBytes, ptr);
      },
      __guest_response(ptr: number, len: number) {
        if (len > responseBytes) {
          guestResponse = undefined;
          guestResponseTooLarge = len;
          return;
        }
        guestResponse = mem().slice(ptr, ptr + len);
      },
      __guest_error(ptr: number, len: number) {
        guestError = str(ptr, len);
      },
      __host_call(bdPtr: number, bdLen: number, nsPtr: number, nsLen: number, opPtr: number, opLen: number, ptr: number, len: number): number {
        const binding = str(bdPtr, bdLen);
        const namespace = str(nsPtr, nsLen);
        const operation = str(opPtr, opLen);
        if (len > hostCallBytes) {
          // Refused before anything is copied out of the guest's memory.
          hostResponse = undefined;
          hostError = utf8.encode(hostCallTooLarge(len, hostCallBytes));
          return 0;
        }
        const payloadBytes = mem().slice(ptr, ptr + len);
        const result = env.hostCall(binding, namespace, operation, payloadBytes);
        if ('ok' in result) {
          hostResponse = result.ok;
          hostError = undefined;
          return 1;
        }
        hostResponse = undefined;
        hostError = utf8.encode(result.error);
        return 0;
      },
      __host_response_len: () => hostResponse?.byteLength ?? 0,
      __host_response(ptr: number) {
        if (hostResponse) mem().set(hostResponse, ptr);
      },
      __host_error_len: () => hostError?.byteLength ?? 0,
      __host_error(ptr: number) {
        if (hostError) mem().set(hostError, ptr);
      },
      __console_log(ptr: number, len: number) {
        env.log('info', str(ptr, len));
      },
    };
    const envImports = {
      abort(msgPtr: number, filePtr: number, line: number, col: number) {
        throw new Error(`abort called at ${msgPtr}:${filePtr}:${line}:${col}`);
      },
    };
    const instance = new WebAssembly.Instance(module, { wapc, env: envImports });
    const exp = instance.exports as Record<string, unknown>;
    memory = exp.memory as WebAssembly.Memory;
    const guestCall = exp.__guest_call as (opLen: number, msgLen: number) => number;
    // waPC guests built with some toolchains need their init export run once.
    for (const init of ['_start', 'wapc_init']) {
      if (typeof exp[init] === 'function') (exp[init] as () => void)();
    }

    return {
      call(operation: string, payloadIn: Uint8Array): Uint8Array {
        opBytes = utf8.encode(operation);
        msgBytes = payloadIn;
        guestResponse = undefined;
        guestResponseTooLarge = 0;
        guestError = undefined;
        const ok = guestCall(opBytes.byteLength, msgBytes.byteLength);
        if (ok === 1) {
          if (guestResponseTooLarge > 0) throw new ResponseTooLarge(guestResponseTooLarge, responseBytes);
          return guestResponse ?? new Uint8Array(0);
        }
        throw new GuestError(guestError ?? `actor failed operation ${operation} without an error message`);
      },
      memoryBytes: () => memory!.buffer.byteLength,
    };
  },
};
