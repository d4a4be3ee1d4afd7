/**
 * Test actors made from WAT text: compiled with wabt and signed with a test account, so tests
 * exercise the same claims path as real actors.
 */
import wabtInit from 'wabt';
import { appendCustomSection, computeModuleHash, encode, encodeJwt, generateKeyPair, signActor, stripCustomSections } from '../../host/index.ts';

let wabtPromise: ReturnType<typeof wabtInit> | undefined;

export async function compileWat(text: string): Promise<Uint8Array> {
  wabtPromise ??= wabtInit();
  const wabt = await wabtPromise;
  const mod = wabt.parseWat('test.wat', text);
  try {
    mod.validate();
    return new Uint8Array(mod.toBinary({}).buffer);
  } finally {
    mod.destroy();
  }
}

/** One test account per process; tests that need another issuer make their own. */
export const testAccount = generateKeyPair('account');

export interface SignedTestActor {
  bytes: Uint8Array;
  /** Module key: the actor id. */
  id: string;
}

export function signTestActor(bytes: Uint8Array, options: { name: string; caps: string[]; account?: string; expiresAt?: number; notBefore?: number }): SignedTestActor {
  const signed = signActor(bytes, {
    account: options.account ?? testAccount.seed,
    name: options.name,
    caps: options.caps,
    ...(options.expiresAt !== undefined ? { expiresAt: options.expiresAt } : {}),
    ...(options.notBefore !== undefined ? { notBefore: options.notBefore } : {}),
  });
  return { bytes: signed.bytes, id: signed.claims.sub };
}

/** Every import of the waPC ABI, as WAT, with the function names the test actors use. */
export const WAPC_IMPORTS = `  (import "wapc" "__guest_request" (func $guest_request (param i32 i32)))
  (import "wapc" "__guest_response" (func $guest_response (param i32 i32)))
  (import "wapc" "__guest_error" (func $guest_error (param i32 i32)))
  (import "wapc" "__host_call" (func $host_call (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wapc" "__host_response_len" (func $host_response_len (result i32)))
  (import "wapc" "__host_response" (func $host_response (param i32)))
  (import "wapc" "__host_error_len" (func $host_error_len (result i32)))
  (import "wapc" "__host_error" (func $host_error (param i32)))
  (import "wapc" "__console_log" (func $console_log (param i32 i32)))
`;

/** Bytes (or a string's UTF-8) as a WAT data string. */
export function watBytes(bytes: Uint8Array | string): string {
  if (typeof bytes === 'string') bytes = Buffer.from(bytes);
  return [...bytes].map((b) => '\\' + b.toString(16).padStart(2, '0')).join('');
}

/** The HTTP response the toolbox actor answers `HandleRequest` with. */
export const TOOLBOX_HTTP_BODY = 'toolbox ok';

/**
 * A waPC guest for host tests. By operation name (first letter):
 * - `loop…`: spins forever (deadline tests);
 * - `trap…`: executes `unreachable`;
 * - `HandleRequest`: traps if the request bytes contain `!`, spins if they contain `~`,
 *   answers bytes that are not msgpack if they contain `^`, otherwise answers 200 with body
 *   TOOLBOX_HTTP_BODY;
 * - `NAMESPACE/OP`: a host call to NAMESPACE with operation OP, payload = the message;
 * - anything else: a host call with namespace = the operation name and operation `Get`.
 * Host calls answer the host's response, or a guest error carrying the host's error.
 * A call that finds the instance already busy answers the guest error `reentered`.
 * Every call writes `handling` to the console log.
 */
export function toolboxWat(): string {
  const http = encode({ statusCode: 200, status: 'OK', header: { 'content-type': 'text/plain' }, body: new TextEncoder().encode(TOOLBOX_HTTP_BODY) });
  return `(module
${WAPC_IMPORTS}  (memory (export "memory") 4)
  (global $busy (mut i32) (i32.const 0))
  (data (i32.const 512) "Get")
  (data (i32.const 520) "reentered")
  (data (i32.const 560) "handling")
  (data (i32.const 580) "\\c1\\c1")
  (data (i32.const 600) "${watBytes(http)}")
  (func $has (param $ptr i32) (param $len i32) (param $byte i32) (result i32)
    (local $i i32)
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
        (if (i32.eq (i32.load8_u (i32.add (local.get $ptr) (local.get $i))) (local.get $byte))
          (then (return (i32.const 1))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $l)))
    (i32.const 0))
  (func (export "__guest_call") (param $op_len i32) (param $msg_len i32) (result i32)
    (local $rc i32) (local $n i32) (local $slash i32) (local $nslen i32) (local $hop i32) (local $hoplen i32)
    (if (global.get $busy)
      (then (call $guest_error (i32.const 520) (i32.const 9)) (return (i32.const 0))))
    (global.set $busy (i32.const 1))
    (call $guest_request (i32.const 0) (i32.const 1024))
    (call $console_log (i32.const 560) (i32.const 8))
    (if (i32.eq (i32.load8_u (i32.const 0)) (i32.const 0x6c)) (then (loop $forever (br $forever))))
    (if (i32.eq (i32.load8_u (i32.const 0)) (i32.const 0x74)) (then unreachable))
    (if (i32.eq (i32.load8_u (i32.const 0)) (i32.const 0x48))
      (then
        (if (call $has (i32.const 1024) (local.get $msg_len) (i32.const 0x21)) (then unreachable))
        (if (call $has (i32.const 1024) (local.get $msg_len) (i32.const 0x7e)) (then (loop $spin (br $spin))))
        (if (call $has (i32.const 1024) (local.get $msg_len) (i32.const 0x5e))
          (then
            (call $guest_response (i32.const 580) (i32.const 2))
            (global.set $busy (i32.const 0))
            (return (i32.const 1))))
        (call $guest_response (i32.const 600) (i32.const ${http.byteLength}))
        (global.set $busy (i32.const 0))
        (return (i32.const 1))))
    ;; NAMESPACE/OP or NAMESPACE (operation Get)
    (local.set $nslen (local.get $op_len))
    (local.set $hop (i32.const 512))
    (local.set $hoplen (i32.const 3))
    (block $found
      (loop $scan
        (br_if $found (i32.ge_u (local.get $slash) (local.get $op_len)))
        (if (i32.eq (i32.load8_u (local.get $slash)) (i32.const 0x2f))
          (then
            (local.set $nslen (local.get $slash))
            (local.set $hop (i32.add (local.get $slash) (i32.const 1)))
            (local.set $hoplen (i32.sub (i32.sub (local.get $op_len) (local.get $slash)) (i32.const 1)))
            (br $found)))
        (local.set $slash (i32.add (local.get $slash) (i32.const 1)))
        (br $scan)))
    (local.set $rc (call $host_call (i32.const 0) (i32.const 0) (i32.const 0) (local.get $nslen)
                                    (local.get $hop) (local.get $hoplen) (i32.const 1024) (local.get $msg_len)))
    (if (local.get $rc)
      (then
        (local.set $n (call $host_response_len))
        (call $host_response (i32.const 131072))
        (call $guest_response (i32.const 131072) (local.get $n))
        (global.set $busy (i32.const 0))
        (return (i32.const 1))))
    (local.set $n (call $host_error_len))
    (call $host_error (i32.const 131072))
    (call $guest_error (i32.const 131072) (local.get $n))
    (global.set $busy (i32.const 0))
    (i32.const 0))
)`;
}

/** Compiles and signs a toolbox actor. */
export async function toolboxActor(options: { name?: string; caps?: string[]; account?: string } = {}): Promise<SignedTestActor> {
  const bytes = await compileWat(toolboxWat());
  return signTestActor(bytes, { name: options.name ?? 'toolbox', caps: options.caps ?? ['wascc:keyvalue', 'wascc:http_server'], ...(options.account ? { account: options.account } : {}) });
}

/**
 * A waPC guest that grows its memory (1 page to start, no declared maximum). By operation (first letter):
 * - `grow`: `memory.grow` by the u32 (little-endian) in the message; answers 8 bytes: the i32
 *   `memory.grow` returned (-1 when refused), then the memory's size in pages;
 * - `fill`: grows by that many pages (trapping when refused) and writes a byte into every new
 *   page, so that the pages are really used; answers `ok`;
 * - `trap`: executes `unreachable`;
 * - anything else: answers `ok`.
 */
export function growerWat(): string {
  return `(module
  (import "wapc" "__guest_request" (func $guest_request (param i32 i32)))
  (import "wapc" "__guest_response" (func $guest_response (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "ok")
  (func (export "__guest_call") (param $op_len i32) (param $msg_len i32) (result i32)
    (local $old i32) (local $pages i32) (local $p i32) (local $end i32)
    (call $guest_request (i32.const 0) (i32.const 16))
    (local.set $pages (i32.load (i32.const 16)))
    (if (i32.eq (i32.load8_u (i32.const 0)) (i32.const 0x67))
      (then
        (i32.store (i32.const 32) (memory.grow (local.get $pages)))
        (i32.store (i32.const 36) (memory.size))
        (call $guest_response (i32.const 32) (i32.const 8))
        (return (i32.const 1))))
    (if (i32.eq (i32.load8_u (i32.const 0)) (i32.const 0x66))
      (then
        (local.set $old (memory.grow (local.get $pages)))
        (if (i32.eq (local.get $old) (i32.const -1)) (then unreachable))
        (local.set $p (i32.mul (local.get $old) (i32.const 65536)))
        (local.set $end (i32.mul (memory.size) (i32.const 65536)))
        (block $done
          (loop $touch
            (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
            (i32.store8 (local.get $p) (i32.const 1))
            (local.set $p (i32.add (local.get $p) (i32.const 4096)))
            (br $touch)))))
    (if (i32.eq (i32.load8_u (i32.const 0)) (i32.const 0x74)) (then unreachable))
    (call $guest_response (i32.const 64) (i32.const 2))
    (i32.const 1))
)`;
}

/**
 * Signs like `signTestActor`, with extra `wascap` fields (e.g. `call_alias`, which the signing
 * API does not write): the claims are built here and signed with the test account.
 */
export function signTestActorWith(bytes: Uint8Array, options: { name: string; caps: string[]; wascap: Record<string, unknown> }): SignedTestActor {
  const stripped = stripCustomSections(bytes, ['jwt', 'wasmcloud_jwt']);
  const sub = generateKeyPair('module').publicKey;
  const claims = {
    jti: `test-${sub.slice(1, 12)}`,
    iat: Math.floor(Date.now() / 1000),
    iss: testAccount.publicKey,
    sub,
    wascap: { name: options.name, hash: computeModuleHash(stripped), tags: [], caps: options.caps, prov: false, ...options.wascap },
  };
  return { bytes: appendCustomSection(stripped, 'jwt', encodeJwt(claims, testAccount.seed)), id: sub };
}
