/**
 * The wasmlet actors SDK: what an actor's TypeScript imports (as `@wasmlet/actor`). An actor
 * module's default export is its HTTP handler; a `handleMessage` export receives the messages
 * of its messaging link (an actor has either or both):
 *
 *   import { handler, json, keyvalue, type Message } from '@wasmlet/actor';
 *   export default handler((req) => json({ counter: keyvalue.add(req.path).ok }));
 *   export function handleMessage(msg: Message) { keyvalue.add(msg.subject); }
 */
export { HeaderMap, HttpRequest, bytes, handler, json, parseQuery, status, text, type HeadersInit, type HttpHandler, type HttpResponse, type ResponseInit } from './http.ts';
export { keyvalue, type KeyValue } from './keyvalue.ts';
export { log, renderValue, type LogContext, type Logger, type LogLevel } from './logging.ts';
export { config } from './config.ts';
export { messaging, Message, type Messaging, type MessageBody, type MessageHandler } from './messaging.ts';
export { httpClient, FetchResponse, type FetchInit, type HttpClient } from './http-client.ts';
export { extras, type Extras } from './extras.ts';
export { clock, random } from './clock-random.ts';
export { ActorError, err, ok, unwrap, type CapabilityError, type Result } from './result.ts';
