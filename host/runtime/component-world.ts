/**
 * The host's side of the `wasmlet:actor` world (see actors-sdk/wit/world.wit): each typed
 * capability import becomes the contract operation a waSCC actor would send, with the same
 * msgpack payload, through `GuestEnv.hostCall`, so the same providers (and the same claims and
 * link checks) serve both kinds of actor.
 *
 * jco's glue lowers a `result<T, error>` import as: the value returned is `ok`, and a thrown
 * value with an own `payload` is `err` (caught inside the glue, so it never reaches the engine).
 * Anything else thrown would cross into StarlingMonkey and poison the instance, so every failure
 * here is an `ImportFailure` (a plain object, not an Error: no stack to capture on each failure).
 */
import { decode, encode } from '../codec.ts';
import { EXTRAS, HTTP_CLIENT, KEY_VALUE, LOGGING, MESSAGING } from '../contracts.ts';
import type { GuestEnv, GuestLogLevel } from './runtime.ts';

export const WORLD_PACKAGE = 'wasmlet:actor';
export const WORLD_VERSION = '0.1.0';
/** The export every component actor must have. */
export const HTTP_HANDLER_EXPORT = `${WORLD_PACKAGE}/http-handler@${WORLD_VERSION}`;
/** Where messages are delivered (components built before it existed do not have it). */
export const MESSAGE_HANDLER_EXPORT = `${WORLD_PACKAGE}/message-handler@${WORLD_VERSION}`;

/** Interfaces (as jco names them, without versions) the host can satisfy. */
export const SUPPORTED_IMPORTS: ReadonlySet<string> = new Set([
  'wasmlet:actor/types',
  'wasmlet:actor/http-types',
  'wasmlet:actor/keyvalue',
  'wasmlet:actor/logging',
  'wasmlet:actor/console',
  'wasmlet:actor/config',
  'wasmlet:actor/message-types',
  'wasmlet:actor/messaging',
  'wasmlet:actor/http-client',
  'wasmlet:actor/extras',
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

/** What a fallible import throws: jco's glue lowers `payload` as the result's `err`. */
export class ImportFailure {
  readonly payload: WitError;
  constructor(code: string, message: string) {
    this.payload = { code, message };
  }
}

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
  if (/ALLOWED_HOSTS|is reserved/.test(message)) return 'not-allowed';
  if (/has no link|has no [\w-]+ link named/.test(message)) return 'not-linked';
  if (/WRONGTYPE|not an integer|out of range|overflow|must be|missing field|at least one key|does not fit|payload must|only http:\/\/ and https:\/\/|cannot have a body|credentials in the URL|method "[^"]*" is not allowed|not a plain subject|empty token|more than \d+$/.test(message)) return 'bad-request';
  if (/nothing serves|no provider|not running|unavailable|disconnected|stopped|ECONNREFUSED|connection/i.test(message)) return 'unavailable';
  return 'failed';
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

/** Exact-size msgpack: `encode` hands out views into a shared buffer, which postMessage would copy whole. */
function encodeExact(value: unknown): Uint8Array {
  return new Uint8Array(encode(value));
}

type Pick<T> = (reply: Record<string, unknown>) => T;

const none: Pick<undefined> = () => undefined;

function int(name: string): Pick<number> {
  return (r) => {
    const v = r[name];
    const n = typeof v === 'bigint' ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isInteger(n)) throw new Error(`reply field "${name}" is not an integer`);
    return n;
  };
}

function count(name: string): Pick<number> {
  const read = int(name);
  return (r) => {
    const n = read(r);
    if (n < 0) throw new Error(`reply field "${name}" is negative`);
    return n;
  };
}

const intValue = int('value');
const newCount = count('newCount');

const strings: Pick<string[]> = (r) => {
  const v = r.values;
  if (v == null) return [];
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) throw new Error('reply field "values" is not a list of strings');
  return v;
};

const optionalString: Pick<string | undefined> = (r) => {
  if (r.exists === false) return undefined;
  if (typeof r.value !== 'string') throw new Error('reply field "value" is not a string');
  return r.value;
};

const exists: Pick<boolean> = (r) => {
  if (typeof r.exists !== 'boolean') throw new Error('reply field "exists" is not a boolean');
  return r.exists;
};

/** waSCC's header map: one string per name, repeats joined with ", ". */
function joinHeaders(headers: ReadonlyArray<readonly [string, string]>): Record<string, string> {
  const out: Record<string, string> = Object.create(null);
  for (const [name, value] of headers) {
    const k = name.toLowerCase();
    out[k] = out[k] === undefined ? value : `${out[k]}, ${value}`;
  }
  return out;
}

const httpResponse: Pick<{ status: number; headers: Array<[string, string]>; body: Uint8Array }> = (r) => {
  const status = r.statusCode;
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 100 || status > 999) throw new Error('reply field "statusCode" is not a status code');
  const header = r.header ?? {};
  if (typeof header !== 'object' || Array.isArray(header)) throw new Error('reply field "header" is not a map');
  const headers = Object.entries(header as Record<string, unknown>).map(([k, v]): [string, string] => [k, String(v)]);
  const body = r.body == null ? new Uint8Array(0) : r.body;
  if (!(body instanceof Uint8Array)) throw new Error('reply field "body" is not bytes');
  return { status, headers, body };
};

/** jco lowers `u64` from a bigint. */
const sequenceNumber: Pick<bigint> = (r) => {
  const v = r.sequenceNumber;
  if (typeof v === 'bigint' && v >= 0n) return v;
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0) return BigInt(v);
  throw new Error('reply field "sequenceNumber" is not an unsigned integer');
};

/**
 * The `wasmlet:actor` imports for one instance. Fallible ones return their `ok` value or throw
 * an ImportFailure (see above); the others never throw.
 */
export function worldImports(env: GuestEnv, config: Readonly<Record<string, string>>): Record<string, Record<string, unknown>> {
  function raw(link: string, namespace: string, operation: string, payload: unknown): Uint8Array {
    let result: ReturnType<GuestEnv['hostCall']>;
    try {
      result = env.hostCall(link, namespace, operation, encodeExact(payload));
    } catch (e) {
      throw new ImportFailure('failed', `${operation}: ${e instanceof Error ? e.message : String(e)}`);
    }
    if ('error' in result) throw new ImportFailure(classifyHostError(result.error), result.error);
    return result.ok;
  }
  function call<T>(link: string, namespace: string, operation: string, payload: unknown, pick: Pick<T>): T {
    const bytes = raw(link, namespace, operation, payload);
    let reply: unknown;
    try {
      reply = bytes.byteLength ? decode(bytes) : {};
    } catch (e) {
      throw new ImportFailure('failed', `${operation}: the provider's reply is not msgpack: ${(e as Error).message}`);
    }
    if (reply === null || typeof reply !== 'object' || Array.isArray(reply)) throw new ImportFailure('failed', `${operation}: the provider's reply is not a map`);
    try {
      return pick(reply as Record<string, unknown>);
    } catch (e) {
      throw new ImportFailure('failed', `${operation}: ${(e as Error).message}`);
    }
  }
  const kv = <T>(link: string, op: string, payload: unknown, pick: Pick<T>): T => call(link, KEY_VALUE, op, payload, pick);
  const keyvalue = {
    get: (link: string, key: string) => kv(link, 'Get', { key }, optionalString),
    set: (link: string, key: string, value: string, expires: number) => kv(link, 'Set', { key, value, expires }, none),
    del: (link: string, key: string) => kv(link, 'Del', { key }, none),
    add: (link: string, key: string, value: number) => kv(link, 'Add', { key, value }, intValue),
    clear: (link: string, key: string) => kv(link, 'Clear', { key }, none),
    range: (link: string, key: string, start: number, stop: number) => kv(link, 'Range', { key, start, stop }, strings),
    push: (link: string, key: string, value: string) => kv(link, 'Push', { key, value }, newCount),
    listItemDelete: (link: string, key: string, value: string) => kv(link, 'ListItemDelete', { key, value }, newCount),
    setAdd: (link: string, key: string, value: string) => kv(link, 'SetAdd', { key, value }, newCount),
    setRemove: (link: string, key: string, value: string) => kv(link, 'SetRemove', { key, value }, newCount),
    setUnion: (link: string, keys: string[]) => kv(link, 'SetUnion', { keys }, strings),
    setIntersection: (link: string, keys: string[]) => kv(link, 'SetIntersection', { keys }, strings),
    setQuery: (link: string, key: string) => kv(link, 'SetQuery', { key }, strings),
    keyExists: (link: string, key: string) => kv(link, 'KeyExists', { key }, exists),
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
  const messaging = {
    publish: (link: string, subject: string, replyTo: string, body: Uint8Array) => call(link, MESSAGING, 'Publish', { subject, replyTo, body }, none),
    // The answer's body, as it came: no wrapper to decode.
    request: (link: string, subject: string, body: Uint8Array, timeoutMs: number) => raw(link, MESSAGING, 'Request', { subject, body, timeout: timeoutMs }),
  };
  const httpClient = {
    send: (link: string, req: { method: string; url: string; headers: Array<[string, string]>; body: Uint8Array }) =>
      call(link, HTTP_CLIENT, 'PerformRequest', { method: req.method, path: req.url, queryString: '', header: joinHeaders(req.headers), body: req.body }, httpResponse),
  };
  const extras = {
    sequence: (link: string) => call(link, EXTRAS, 'RequestSequence', { guid: false, sequence: true, random: false, min: 0, max: 0 }, sequenceNumber),
  };
  return {
    'wasmlet:actor/messaging': messaging,
    'wasmlet:actor/message-types': {},
    'wasmlet:actor/http-client': httpClient,
    'wasmlet:actor/extras': extras,
    'wasmlet:actor/keyvalue': keyvalue,
    'wasmlet:actor/logging': logging,
    'wasmlet:actor/console': consoleImport,
    'wasmlet:actor/config': configImport,
    'wasmlet:actor/types': {},
    'wasmlet:actor/http-types': {},
  };
}
