/**
 * The wasmlet actors SDK: what an actor's TypeScript imports (as `@wasmlet/actor`). An actor
 * module's default export is its HTTP handler:
 *
 *   import { handler, json, keyvalue } from '@wasmlet/actor';
 *   export default handler((req) => json({ counter: keyvalue.add(req.path).ok }));
 */
export { HeaderMap, HttpRequest, bytes, handler, json, parseQuery, status, text, type HeadersInit, type HttpHandler, type HttpResponse, type ResponseInit } from './http.ts';
export { keyvalue, type KeyValue } from './keyvalue.ts';
export { log, renderValue, type LogContext, type Logger, type LogLevel } from './logging.ts';
export { config } from './config.ts';
export { clock, random } from './clock-random.ts';
export { ActorError, err, ok, unwrap, type CapabilityError, type Result } from './result.ts';
