/**
 * The host's side of the `wasmlet:actor` world (see actors-sdk/wit/world.wit): each typed
 * capability import becomes the contract operation a waSCC actor would send, with the same
 * msgpack payload, through `GuestEnv.hostCall`, so the same providers (and the same claims and
 * link checks) serve both kinds of actor. Imports never throw (a throwing import poisons a
 * StarlingMonkey instance): failures are returned as `{ tag: 'err' }` values.
 */
import { decode, encode } from '../codec.ts';
import { KEY_VALUE, LOGGING } from '../contracts.ts';
import type { GuestEnv, GuestLogLevel } from './runtime.ts';

export const WORLD_PACKAGE = 'wasmlet:actor';
export const WORLD_VERSION = '0.1.0';
/** The export every component actor must have. */
export const HTTP_HANDLER_EXPORT = `${WORLD_PACKAGE}/http-handler@${WORLD_VERSION}`;

/** Interfaces (as jco names them, without versions) the host can satisfy. */
export const SUPPORTED_IMPORTS: ReadonlySet<string> = new Set([
  'wasmlet:actor/types',
  'wasmlet:actor/http-types',
  'wasmlet:actor/keyvalue',
  'wasmlet:actor/logging',
  'wasmlet:actor/console',
  'wasmlet:actor/config',
  'wasi:cli/stderr',
  'wasi:clocks/monotonic-clock',
  'wasi:clocks/wall-clock',
  'wasi:io/error',
  'wasi:io/poll',
  'wasi:io/streams',
  'wasi:random/random',
  'wasi:random/insecure',
  'wasi:random/insecure-seed',
]);

export interface WitError {
  code: string;
  message: string;
}
export type WitResult<T> = { tag: 'ok'; val: T } | { tag: 'err'; val: WitError };

type Level = 'trace' | 'debug' | 'info' | 'warn' | 'error';

/** waSCC's log level numbers (Rust `log::Level`). */
const WASCC_LEVEL: Record<Level, number> = { error: 1, warn: 2, info: 3, debug: 4, trace: 5 };

/**
 * The error code an actor sees for a host-call failure. Host calls report a message only, so
 * the code is read from the host's and providers' wording.
 */
export function classifyHostError(message: string): string {
  if (/timed out|deadline|did not answer .* in time/i.test(message)) return 'timeout';
  if (/not allowed to call/.test(message)) return 'not-claimed';
  if (/has no link|has no [\w-]+ link named/.test(message)) return 'not-linked';
  if (/WRONGTYPE|not an integer|out of range|overflow|must be|missing field|at least one key|does not fit|payload must/.test(message)) return 'bad-request';
  if (/nothing serves|no provider|not running|unavailable|disconnected|stopped|ECONNREFUSED|connection/i.test(message)) return 'unavailable';
  return 'failed';
}

function err(code: string, message: string): { tag: 'err'; val: WitError } {
  return { tag: 'err', val: { code, message } };
}

/** Quotes a logfmt value when it needs it. */
function logfmtValue(v: string): string {
  return v === '' || /[\s"=]/.test(v) ? JSON.stringify(v) : v;
}

/** `message key=value …`: the context stays readable in any log view. */
export function renderLogLine(message: string, context: ReadonlyArray<readonly [string, string]>): string {
  if (context.length === 0) return message;
  return `${message} ${context.map(([k, v]) => `${k}=${logfmtValue(v)}`).join(' ')}`;
}

/** The `wasmlet:actor` imports for one instance. */
export function worldImports(env: GuestEnv, config: Readonly<Record<string, string>>): Record<string, Record<string, unknown>> {
  const call = <T>(link: string, namespace: string, operation: string, payload: unknown, pick: (reply: Record<string, unknown>) => T): WitResult<T> => {
    let result: ReturnType<GuestEnv['hostCall']>;
    try {
      result = env.hostCall(link, namespace, operation, encode(payload));
    } catch (e) {
      return err('failed', `${operation}: ${e instanceof Error ? e.message : String(e)}`);
    }
    if ('error' in result) return err(classifyHostError(result.error), result.error);
    let reply: unknown;
    try {
      reply = result.ok.byteLength ? decode(result.ok) : {};
    } catch (e) {
      return err('failed', `${operation}: the provider's reply is not msgpack: ${(e as Error).message}`);
    }
    if (reply === null || typeof reply !== 'object' || Array.isArray(reply)) return err('failed', `${operation}: the provider's reply is not a map`);
    try {
      return { tag: 'ok', val: pick(reply as Record<string, unknown>) };
    } catch (e) {
      return err('failed', `${operation}: ${(e as Error).message}`);
    }
  };
  const kv = <T>(link: string, op: string, payload: unknown, pick: (r: Record<string, unknown>) => T) => call(link, KEY_VALUE, op, payload, pick);
  const none = () => undefined;
  const int = (name: string) => (r: Record<string, unknown>): number => {
    const v = r[name];
    const n = typeof v === 'bigint' ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isInteger(n)) throw new Error(`reply field "${name}" is not an integer`);
    return n;
  };
  const count = (name: string) => (r: Record<string, unknown>): number => {
    const n = int(name)(r);
    if (n < 0) throw new Error(`reply field "${name}" is negative`);
    return n;
  };
  const strings = (r: Record<string, unknown>): string[] => {
    const v = r.values;
    if (v == null) return [];
    if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) throw new Error('reply field "values" is not a list of strings');
    return v;
  };
  const keyvalue = {
    get: (link: string, key: string) =>
      kv(link, 'Get', { key }, (r) => {
        if (r.exists === false) return undefined;
        if (typeof r.value !== 'string') throw new Error('reply field "value" is not a string');
        return r.value;
      }),
    set: (link: string, key: string, value: string, expires: number) => kv(link, 'Set', { key, value, expires }, none),
    del: (link: string, key: string) => kv(link, 'Del', { key }, none),
    add: (link: string, key: string, value: number) => kv(link, 'Add', { key, value }, int('value')),
    clear: (link: string, key: string) => kv(link, 'Clear', { key }, none),
    range: (link: string, key: string, start: number, stop: number) => kv(link, 'Range', { key, start, stop }, strings),
    push: (link: string, key: string, value: string) => kv(link, 'Push', { key, value }, count('newCount')),
    listItemDelete: (link: string, key: string, value: string) => kv(link, 'ListItemDelete', { key, value }, count('newCount')),
    setAdd: (link: string, key: string, value: string) => kv(link, 'SetAdd', { key, value }, count('newCount')),
    setRemove: (link: string, key: string, value: string) => kv(link, 'SetRemove', { key, value }, count('newCount')),
    setUnion: (link: string, keys: string[]) => kv(link, 'SetUnion', { keys }, strings),
    setIntersection: (link: string, keys: string[]) => kv(link, 'SetIntersection', { keys }, strings),
    setQuery: (link: string, key: string) => kv(link, 'SetQuery', { key }, strings),
    keyExists: (link: string, key: string) =>
      kv(link, 'KeyExists', { key }, (r) => {
        if (typeof r.exists !== 'boolean') throw new Error('reply field "exists" is not a boolean');
        return r.exists;
      }),
  };
  const logging = {
    writeLog: (link: string, level: Level, message: string, context: Array<[string, string]>) =>
      call(link, LOGGING, 'WriteLog', { level: WASCC_LEVEL[level] ?? 3, body: renderLogLine(message, context), context: Object.fromEntries(context) }, none),
  };
  const consoleImport = {
    write: (level: Level, message: string) => {
      env.log((level in WASCC_LEVEL ? level : 'info') as GuestLogLevel, message);
    },
  };
  const configImport = {
    get: (key: string) => (Object.hasOwn(config, key) ? config[key] : undefined),
    getAll: () => Object.entries(config),
  };
  return {
    'wasmlet:actor/keyvalue': keyvalue,
    'wasmlet:actor/logging': logging,
    'wasmlet:actor/console': consoleImport,
    'wasmlet:actor/config': configImport,
    'wasmlet:actor/types': {},
    'wasmlet:actor/http-types': {},
  };
}
