/**
 * waPC test actors that speak waSCC's messaging codec byte for byte, in WAT: stand-ins for waSCC's
 * subscriber and publisher example actors (whose binaries are not available to the tests). They
 * read the msgpack maps they are handed by walking them (any key order, any msgpack string or
 * binary width), and build their host calls the way wascc-actor serializes them (named fields,
 * `body` as msgpack bin).
 *
 * - subscriber: answers `DeliverMessage {subject, replyTo, body}`: logs the subject to its
 *   console, counts the message in key-value (`Add {key: subject, value: 1}` on
 *   `wascc:keyvalue`), and, when `replyTo` is set, publishes the body back to it (`Publish
 *   {subject: replyTo, replyTo: "", body}` on `wascc:messaging`), which answers requests. Its
 *   answer is msgpack nil, as wascc-actor's `Ok(())`.
 * - publisher: answers `HandleRequest`: publishes the request's path (as bytes) to `subject`
 *   and answers 200 with the path; with a query string, it sends a `Request {subject:
 *   requestSubject, body: path, timeout}` instead and answers 200 with the reply's bytes. A
 *   failed host call is its guest error (HTTP 500).
 */
import { encode } from '../../host/index.ts';
import { compileWat, signTestActor, WAPC_IMPORTS, watBytes, type SignedTestActor } from './wat.ts';


/** Constants placed from 512 on, each `(data …)` with its address and length. */
function constants(items: Record<string, Uint8Array | string>): { data: string; at: Record<string, [number, number]> } {
  let addr = 512;
  const at: Record<string, [number, number]> = {};
  const lines: string[] = [];
  for (const [name, value] of Object.entries(items)) {
    const len = typeof value === 'string' ? Buffer.byteLength(value) : value.byteLength;
    at[name] = [addr, len];
    lines.push(`  (data (i32.const ${addr}) "${watBytes(value)}")`);
    addr += len + 8;
  }
  if (addr > 1024) throw new Error('test actor constants do not fit below 1024');
  return { data: lines.join('\n'), at };
}

/** msgpack map keys as wascc-codec writes them (fixstr). */
const key = (k: string) => encode(k);

const IMPORTS = `
${WAPC_IMPORTS}  (memory (export "memory") 8)`;

/** Incoming payload at 1024; the message being built at OUT; host replies at REPLY. */
const MSG = 1024;
const OUT = 200_000;
const REPLY = 350_000;

/** A small msgpack reader and writer, shared by the actors. */
const MSGPACK = `
  (global $len (mut i32) (i32.const 0))
  (global $out (mut i32) (i32.const ${OUT}))
  (func $u16 (param $p i32) (result i32)
    (i32.or (i32.shl (i32.load8_u (local.get $p)) (i32.const 8)) (i32.load8_u offset=1 (local.get $p))))
  (func $u32 (param $p i32) (result i32)
    (i32.or (i32.shl (call $u16 (local.get $p)) (i32.const 16)) (call $u16 (i32.add (local.get $p) (i32.const 2)))))
  ;; The address just after the msgpack value at $p.
  (func $skip (param $p i32) (result i32)
    (local $b i32) (local $n i32)
    (local.set $b (i32.load8_u (local.get $p)))
    (if (i32.or (i32.le_u (local.get $b) (i32.const 0x7f)) (i32.ge_u (local.get $b) (i32.const 0xe0))) (then (return (i32.add (local.get $p) (i32.const 1)))))
    (if (i32.and (i32.ge_u (local.get $b) (i32.const 0xc0)) (i32.le_u (local.get $b) (i32.const 0xc3))) (then (return (i32.add (local.get $p) (i32.const 1)))))
    (if (i32.eq (i32.and (local.get $b) (i32.const 0xe0)) (i32.const 0xa0)) (then (return (i32.add (local.get $p) (i32.add (i32.const 1) (i32.and (local.get $b) (i32.const 0x1f)))))))
    (if (i32.or (i32.eq (local.get $b) (i32.const 0xd9)) (i32.eq (local.get $b) (i32.const 0xc4))) (then (return (i32.add (local.get $p) (i32.add (i32.const 2) (i32.load8_u offset=1 (local.get $p)))))))
    (if (i32.or (i32.eq (local.get $b) (i32.const 0xda)) (i32.eq (local.get $b) (i32.const 0xc5))) (then (return (i32.add (local.get $p) (i32.add (i32.const 3) (call $u16 (i32.add (local.get $p) (i32.const 1))))))))
    (if (i32.or (i32.eq (local.get $b) (i32.const 0xdb)) (i32.eq (local.get $b) (i32.const 0xc6))) (then (return (i32.add (local.get $p) (i32.add (i32.const 5) (call $u32 (i32.add (local.get $p) (i32.const 1))))))))
    (if (i32.or (i32.eq (local.get $b) (i32.const 0xcc)) (i32.eq (local.get $b) (i32.const 0xd0))) (then (return (i32.add (local.get $p) (i32.const 2)))))
    (if (i32.or (i32.eq (local.get $b) (i32.const 0xcd)) (i32.eq (local.get $b) (i32.const 0xd1))) (then (return (i32.add (local.get $p) (i32.const 3)))))
    (if (i32.or (i32.or (i32.eq (local.get $b) (i32.const 0xce)) (i32.eq (local.get $b) (i32.const 0xd2))) (i32.eq (local.get $b) (i32.const 0xca))) (then (return (i32.add (local.get $p) (i32.const 5)))))
    (if (i32.or (i32.or (i32.eq (local.get $b) (i32.const 0xcf)) (i32.eq (local.get $b) (i32.const 0xd3))) (i32.eq (local.get $b) (i32.const 0xcb))) (then (return (i32.add (local.get $p) (i32.const 9)))))
    ;; containers: $n values follow
    (block $count
      (if (i32.eq (i32.and (local.get $b) (i32.const 0xf0)) (i32.const 0x80)) (then (local.set $n (i32.shl (i32.and (local.get $b) (i32.const 0x0f)) (i32.const 1))) (local.set $p (i32.add (local.get $p) (i32.const 1))) (br $count)))
      (if (i32.eq (i32.and (local.get $b) (i32.const 0xf0)) (i32.const 0x90)) (then (local.set $n (i32.and (local.get $b) (i32.const 0x0f))) (local.set $p (i32.add (local.get $p) (i32.const 1))) (br $count)))
      (if (i32.eq (local.get $b) (i32.const 0xde)) (then (local.set $n (i32.shl (call $u16 (i32.add (local.get $p) (i32.const 1))) (i32.const 1))) (local.set $p (i32.add (local.get $p) (i32.const 3))) (br $count)))
      (if (i32.eq (local.get $b) (i32.const 0xdc)) (then (local.set $n (call $u16 (i32.add (local.get $p) (i32.const 1)))) (local.set $p (i32.add (local.get $p) (i32.const 3))) (br $count)))
      (if (i32.eq (local.get $b) (i32.const 0xdf)) (then (local.set $n (i32.shl (call $u32 (i32.add (local.get $p) (i32.const 1))) (i32.const 1))) (local.set $p (i32.add (local.get $p) (i32.const 5))) (br $count)))
      (if (i32.eq (local.get $b) (i32.const 0xdd)) (then (local.set $n (call $u32 (i32.add (local.get $p) (i32.const 1)))) (local.set $p (i32.add (local.get $p) (i32.const 5))) (br $count)))
      unreachable)
    (block $done
      (loop $each
        (br_if $done (i32.eqz (local.get $n)))
        (local.set $p (call $skip (local.get $p)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $each)))
    (local.get $p))
  ;; The data address of the string or bytes at $p; its length in $len (nil: length 0).
  (func $data (param $p i32) (result i32)
    (local $b i32)
    (local.set $b (i32.load8_u (local.get $p)))
    (global.set $len (i32.const 0))
    (if (i32.eq (i32.and (local.get $b) (i32.const 0xe0)) (i32.const 0xa0)) (then (global.set $len (i32.and (local.get $b) (i32.const 0x1f))) (return (i32.add (local.get $p) (i32.const 1)))))
    (if (i32.or (i32.eq (local.get $b) (i32.const 0xd9)) (i32.eq (local.get $b) (i32.const 0xc4))) (then (global.set $len (i32.load8_u offset=1 (local.get $p))) (return (i32.add (local.get $p) (i32.const 2)))))
    (if (i32.or (i32.eq (local.get $b) (i32.const 0xda)) (i32.eq (local.get $b) (i32.const 0xc5))) (then (global.set $len (call $u16 (i32.add (local.get $p) (i32.const 1)))) (return (i32.add (local.get $p) (i32.const 3)))))
    (if (i32.or (i32.eq (local.get $b) (i32.const 0xdb)) (i32.eq (local.get $b) (i32.const 0xc6))) (then (global.set $len (call $u32 (i32.add (local.get $p) (i32.const 1)))) (return (i32.add (local.get $p) (i32.const 5)))))
    (local.get $p))
  ;; The value of the first key of the map at $m whose length is $klen and first byte $k0; 0 when absent.
  (func $find (param $m i32) (param $k0 i32) (param $klen i32) (result i32)
    (local $b i32) (local $n i32) (local $p i32) (local $kd i32)
    (local.set $b (i32.load8_u (local.get $m)))
    (if (i32.eq (i32.and (local.get $b) (i32.const 0xf0)) (i32.const 0x80))
      (then (local.set $n (i32.and (local.get $b) (i32.const 0x0f))) (local.set $p (i32.add (local.get $m) (i32.const 1))))
      (else
        (if (i32.ne (local.get $b) (i32.const 0xde)) (then (return (i32.const 0))))
        (local.set $n (call $u16 (i32.add (local.get $m) (i32.const 1)))) (local.set $p (i32.add (local.get $m) (i32.const 3)))))
    (block $none
      (loop $each
        (br_if $none (i32.eqz (local.get $n)))
        (local.set $kd (call $data (local.get $p)))
        (local.set $p (call $skip (local.get $p)))
        (if (i32.and (i32.eq (global.get $len) (local.get $klen)) (i32.eq (i32.load8_u (local.get $kd)) (local.get $k0)))
          (then (return (local.get $p))))
        (local.set $p (call $skip (local.get $p)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $each)))
    (i32.const 0))
  (func $byte (param $v i32)
    (i32.store8 (global.get $out) (local.get $v))
    (global.set $out (i32.add (global.get $out) (i32.const 1))))
  (func $bytes (param $src i32) (param $n i32)
    (memory.copy (global.get $out) (local.get $src) (local.get $n))
    (global.set $out (i32.add (global.get $out) (local.get $n))))
  ;; Copies the msgpack value at $p as it is.
  (func $value (param $p i32)
    (call $bytes (local.get $p) (i32.sub (call $skip (local.get $p)) (local.get $p))))
  ;; A msgpack bin header for $n bytes (bin8, bin16 or bin32, as rmp-serde picks).
  (func $bin (param $n i32)
    (if (i32.lt_u (local.get $n) (i32.const 256)) (then (call $byte (i32.const 0xc4)) (call $byte (local.get $n)) (return)))
    (if (i32.lt_u (local.get $n) (i32.const 65536)) (then (call $byte (i32.const 0xc5)) (call $byte (i32.shr_u (local.get $n) (i32.const 8))) (call $byte (local.get $n)) (return)))
    (call $byte (i32.const 0xc6))
    (call $byte (i32.shr_u (local.get $n) (i32.const 24))) (call $byte (i32.shr_u (local.get $n) (i32.const 16)))
    (call $byte (i32.shr_u (local.get $n) (i32.const 8))) (call $byte (local.get $n)))
  ;; Host call (binding "") of what was built since ${OUT}; the reply lands at ${REPLY}, its length in $len.
  ;; On failure the host's error becomes this call's guest error and 0 is returned.
  (func $call (param $ns i32) (param $nslen i32) (param $op i32) (param $oplen i32) (result i32)
    (local $n i32)
    (if (call $host_call (i32.const 0) (i32.const 0) (local.get $ns) (local.get $nslen) (local.get $op) (local.get $oplen)
                         (i32.const ${OUT}) (i32.sub (global.get $out) (i32.const ${OUT})))
      (then
        (global.set $len (call $host_response_len))
        (call $host_response (i32.const ${REPLY}))
        (global.set $out (i32.const ${OUT}))
        (return (i32.const 1))))
    (local.set $n (call $host_error_len))
    (call $host_error (i32.const ${REPLY}))
    (call $guest_error (i32.const ${REPLY}) (local.get $n))
    (global.set $out (i32.const ${OUT}))
    (i32.const 0))`;

function ref(at: Record<string, [number, number]>, name: string): string {
  const [a, n] = at[name]!;
  return `(i32.const ${a}) (i32.const ${n})`;
}

export function subscriberWat(): string {
  const { data, at } = constants({
    nsMessaging: 'wascc:messaging',
    nsKeyvalue: 'wascc:keyvalue',
    opPublish: 'Publish',
    opAdd: 'Add',
    kSubject: key('subject'),
    kReplyTo: key('replyTo'),
    kBody: key('body'),
    kKey: key('key'),
    kValue: key('value'),
    nil: new Uint8Array([0xc0]),
    unknown: 'subscriber: unknown operation',
  });
  return `(module${IMPORTS}
${data}
${MSGPACK}
  (func (export "__guest_call") (param $op_len i32) (param $msg_len i32) (result i32)
    (local $subject i32) (local $reply i32) (local $body i32) (local $d i32)
    (call $guest_request (i32.const 0) (i32.const ${MSG}))
    ;; DeliverMessage (first letter D)
    (if (i32.ne (i32.load8_u (i32.const 0)) (i32.const 0x44))
      (then (call $guest_error ${ref(at, 'unknown')}) (return (i32.const 0))))
    (local.set $subject (call $find (i32.const ${MSG}) (i32.const 0x73) (i32.const 7)))
    (local.set $reply (call $find (i32.const ${MSG}) (i32.const 0x72) (i32.const 7)))
    (local.set $body (call $find (i32.const ${MSG}) (i32.const 0x62) (i32.const 4)))
    (if (i32.or (i32.eqz (local.get $subject)) (i32.eqz (local.get $body))) (then unreachable))
    (local.set $d (call $data (local.get $subject)))
    (call $console_log (local.get $d) (global.get $len))
    ;; Add {key: subject, value: 1}
    (call $byte (i32.const 0x82))
    (call $bytes ${ref(at, 'kKey')}) (call $value (local.get $subject))
    (call $bytes ${ref(at, 'kValue')}) (call $byte (i32.const 1))
    (if (i32.eqz (call $call ${ref(at, 'nsKeyvalue')} ${ref(at, 'opAdd')})) (then (return (i32.const 0))))
    ;; Publish {subject: replyTo, replyTo: "", body} when a reply is wanted
    (if (local.get $reply)
      (then
        (drop (call $data (local.get $reply)))
        (if (global.get $len)
          (then
            (call $byte (i32.const 0x83))
            (call $bytes ${ref(at, 'kSubject')}) (call $value (local.get $reply))
            (call $bytes ${ref(at, 'kReplyTo')}) (call $byte (i32.const 0xa0))
            (call $bytes ${ref(at, 'kBody')}) (call $value (local.get $body))
            (if (i32.eqz (call $call ${ref(at, 'nsMessaging')} ${ref(at, 'opPublish')})) (then (return (i32.const 0))))))))
    (call $guest_response ${ref(at, 'nil')})
    (i32.const 1))
)`;
}

export function publisherWat(subject: string, requestSubject: string, timeoutMs = 1000): string {
  const ok = encode({ statusCode: 200, status: 'OK', header: {}, body: Buffer.alloc(0) });
  // The response map up to the body's bin header (c4 00 at the end), which the actor writes.
  const responsePrefix = ok.subarray(0, ok.byteLength - 2);
  const { data, at } = constants({
    nsMessaging: 'wascc:messaging',
    opPublish: 'Publish',
    opRequest: 'Request',
    subject: encode(subject),
    requestSubject: encode(requestSubject),
    kSubject: key('subject'),
    kReplyTo: key('replyTo'),
    kBody: key('body'),
    timeout: Buffer.concat([key('timeout'), encode(timeoutMs)]),
    response: responsePrefix,
    unknown: 'publisher: unknown operation',
  });
  return `(module${IMPORTS}
${data}
${MSGPACK}
  (global $answer (mut i32) (i32.const 0))
  (global $answerLen (mut i32) (i32.const 0))
  (func (export "__guest_call") (param $op_len i32) (param $msg_len i32) (result i32)
    (local $path i32) (local $query i32) (local $pd i32) (local $plen i32) (local $start i32)
    (call $guest_request (i32.const 0) (i32.const ${MSG}))
    ;; HandleRequest (first letter H)
    (if (i32.ne (i32.load8_u (i32.const 0)) (i32.const 0x48))
      (then (call $guest_error ${ref(at, 'unknown')}) (return (i32.const 0))))
    (local.set $path (call $find (i32.const ${MSG}) (i32.const 0x70) (i32.const 4)))
    (local.set $query (call $find (i32.const ${MSG}) (i32.const 0x71) (i32.const 11)))
    (if (i32.eqz (local.get $path)) (then unreachable))
    (local.set $pd (call $data (local.get $path)))
    (local.set $plen (global.get $len))
    (global.set $len (i32.const 0))
    (if (local.get $query) (then (drop (call $data (local.get $query)))))
    (if (global.get $len)
      (then
        ;; Request {subject, body: path, timeout}: answer the reply's bytes
        (call $byte (i32.const 0x83))
        (call $bytes ${ref(at, 'kSubject')}) (call $bytes ${ref(at, 'requestSubject')})
        (call $bytes ${ref(at, 'kBody')}) (call $bin (local.get $plen)) (call $bytes (local.get $pd) (local.get $plen))
        (call $bytes ${ref(at, 'timeout')})
        (if (i32.eqz (call $call ${ref(at, 'nsMessaging')} ${ref(at, 'opRequest')})) (then (return (i32.const 0))))
        (global.set $answer (i32.const ${REPLY}))
        (global.set $answerLen (global.get $len)))
      (else
        ;; Publish {subject, replyTo: "", body: path}: answer the path
        (call $byte (i32.const 0x83))
        (call $bytes ${ref(at, 'kSubject')}) (call $bytes ${ref(at, 'subject')})
        (call $bytes ${ref(at, 'kReplyTo')}) (call $byte (i32.const 0xa0))
        (call $bytes ${ref(at, 'kBody')}) (call $bin (local.get $plen)) (call $bytes (local.get $pd) (local.get $plen))
        (if (i32.eqz (call $call ${ref(at, 'nsMessaging')} ${ref(at, 'opPublish')})) (then (return (i32.const 0))))
        (global.set $answer (local.get $pd))
        (global.set $answerLen (local.get $plen))))
    ;; {statusCode: 200, status: "OK", header: {}, body: <answer>}
    (local.set $start (global.get $out))
    (call $bytes ${ref(at, 'response')})
    (call $bin (global.get $answerLen))
    (call $bytes (global.get $answer) (global.get $answerLen))
    (call $guest_response (local.get $start) (i32.sub (global.get $out) (local.get $start)))
    (global.set $out (i32.const ${OUT}))
    (i32.const 1))
)`;
}

export async function subscriberActor(options: { name?: string; caps?: string[] } = {}): Promise<SignedTestActor> {
  return signTestActor(await compileWat(subscriberWat()), { name: options.name ?? 'subscriber', caps: options.caps ?? ['wascc:messaging', 'wascc:keyvalue'] });
}

export async function publisherActor(options: { subject?: string; requestSubject?: string; name?: string; caps?: string[] } = {}): Promise<SignedTestActor> {
  const wat = publisherWat(options.subject ?? 'demo.requests', options.requestSubject ?? 'demo.echo');
  return signTestActor(await compileWat(wat), { name: options.name ?? 'publisher', caps: options.caps ?? ['wascc:messaging', 'wascc:http_server'] });
}
