/**
 * The raw imports of the `wasmlet:actor` world as componentize-js hands them to JavaScript.
 * Actor authors never import these: the SDK wraps them. `result` imports return the ok value
 * and throw a ComponentError whose `payload` is the error value.
 */
declare module 'wasmlet:actor/types@0.1.0' {
  export interface Error {
    code: string;
    message: string;
  }
  export type Level = 'trace' | 'debug' | 'info' | 'warn' | 'error';
}

declare module 'wasmlet:actor/keyvalue@0.1.0' {
  export function get(link: string, key: string): string | undefined;
  export function set(link: string, key: string, value: string, expiresSeconds: number): void;
  export function del(link: string, key: string): void;
  export function add(link: string, key: string, delta: number): number;
  export function clear(link: string, key: string): void;
  export function range(link: string, key: string, start: number, stop: number): string[];
  export function push(link: string, key: string, value: string): number;
  export function listItemDelete(link: string, key: string, value: string): number;
  export function setAdd(link: string, key: string, value: string): number;
  export function setRemove(link: string, key: string, value: string): number;
  export function setUnion(link: string, keys: string[]): string[];
  export function setIntersection(link: string, keys: string[]): string[];
  export function setQuery(link: string, key: string): string[];
  export function keyExists(link: string, key: string): boolean;
}

declare module 'wasmlet:actor/logging@0.1.0' {
  import type { Level } from 'wasmlet:actor/types@0.1.0';
  export function writeLog(link: string, level: Level, message: string, context: Array<[string, string]>): void;
}

declare module 'wasmlet:actor/console@0.1.0' {
  import type { Level } from 'wasmlet:actor/types@0.1.0';
  export function write(level: Level, message: string): void;
}

declare module 'wasmlet:actor/config@0.1.0' {
  export function get(key: string): string | undefined;
  export function getAll(): Array<[string, string]>;
}

declare module 'wasmlet:actor/message-types@0.1.0' {
  export interface Message {
    subject: string;
    replyTo: string;
    body: Uint8Array;
  }
}

declare module 'wasmlet:actor/messaging@0.1.0' {
  export function publish(link: string, subject: string, replyTo: string, body: Uint8Array): void;
  export function request(link: string, subject: string, body: Uint8Array, timeoutMs: number): Uint8Array;
}

declare module 'wasmlet:actor/http-client@0.1.0' {
  export interface OutgoingRequest {
    method: string;
    url: string;
    headers: Array<[string, string]>;
    body: Uint8Array;
  }
  export interface IncomingResponse {
    status: number;
    headers: Array<[string, string]>;
    body: Uint8Array;
  }
  export function send(link: string, request: OutgoingRequest): IncomingResponse;
}

declare module 'wasmlet:actor/extras@0.1.0' {
  export function sequence(link: string): bigint;
}
