/**
 * What the build wraps around an actor's module: the world's `http-handler` export, made from
 * the module's default export. Exceptions never cross the component boundary as JS
 * exceptions (that would trap without a message): ActorError becomes `failed`, anything else
 * `crashed` with its message and stack, and the host decides what to keep.
 */
import { HttpRequest, toRawResponse, type HttpHandler, type RawRequest, type RawResponse } from './http.ts';
import { installConsole } from './logging.ts';
import { Message, type MessageHandler } from './messaging.ts';
import { ActorError } from './result.ts';

type HandlerError = { tag: 'failed'; val: string } | { tag: 'crashed'; val: string };

/** Thrown back to the engine: componentize-js lowers `payload` as the result's error. */
class HandlerFailure extends Error {
  constructor(readonly payload: HandlerError) {
    super(payload.val);
  }
}

function describe(e: unknown): string {
  if (e instanceof Error) {
    const head = `${e.name}: ${e.message}`;
    const stack = typeof e.stack === 'string' ? e.stack.trim() : '';
    return stack ? `${head}\n${stack}` : head;
  }
  try {
    return `non-Error value thrown: ${JSON.stringify(e)}`;
  } catch {
    return `non-Error value thrown: ${String(e)}`;
  }
}

/** Runs a handler: ActorError becomes `failed`, anything else thrown `crashed`. */
function run<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof ActorError) throw new HandlerFailure({ tag: 'failed', val: e.message });
    throw new HandlerFailure({ tag: 'crashed', val: describe(e) });
  }
}

export function exportHttpHandler(handler: unknown): { handleRequest(request: RawRequest): RawResponse } {
  installConsole();
  return {
    handleRequest(request: RawRequest): RawResponse {
      // An actor without one (a message handler only) answers HTTP with its error, and is kept.
      if (typeof handler !== 'function') throw new HandlerFailure({ tag: 'failed', val: 'this actor has no HTTP handler (no default export)' });
      return run(() => toRawResponse((handler as HttpHandler)(new HttpRequest(request))));
    },
  };
}

export function exportMessageHandler(handler: unknown): { handleMessage(message: { subject: string; replyTo: string; body: Uint8Array }): void } {
  installConsole();
  return {
    handleMessage(message): void {
      if (typeof handler !== 'function') throw new HandlerFailure({ tag: 'failed', val: 'this actor has no message handler (no handleMessage export)' });
      run(() => {
        const result = (handler as MessageHandler)(new Message(message)) as unknown;
        if (result !== undefined && typeof (result as { then?: unknown })?.then === 'function') {
          throw new TypeError('handleMessage returned a Promise: handlers run synchronously (every capability call is synchronous)');
        }
      });
    },
  };
}
