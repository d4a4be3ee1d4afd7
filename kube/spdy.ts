/**
 * A SPDY/3.1 session, server side, as much of the protocol as Kubernetes' streaming uses (what
 * `kubectl port-forward` speaks to a kubelet, directly or tunneled in WebSocket messages): peers
 * open streams with SYN_STREAM and headers, the session answers each with SYN_REPLY, data flows
 * in DATA frames until FIN, RST_STREAM resets a stream, PINGs from the peer are echoed, GOAWAY ends
 * the session. Header blocks are zlib-compressed with the SPDY/3 dictionary, one compression
 * context per direction for the whole session, so they are handled strictly in order. As
 * Kubernetes' SPDY library, it does not do flow control (WINDOW_UPDATE and SETTINGS are read and
 * ignored). Frames are bounded (16 MiB, the format's limit; header blocks 64 KiB).
 */
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { constants, createDeflate, createInflate, type Deflate, type Inflate } from 'node:zlib';
import { SPDY3_DICTIONARY } from './spdy-dictionary.ts';

const VERSION = 3;
const SYN_STREAM = 1;
const SYN_REPLY = 2;
const RST_STREAM = 3;
const PING = 6;
const GOAWAY = 7;
const HEADERS = 8;
const FLAG_FIN = 0x01;
/** The most a DATA frame we send carries. */
const MAX_DATA = 64 * 1024;
const MAX_HEADER_BLOCK = 64 * 1024;

export const RST_PROTOCOL_ERROR = 1;
export const RST_CANCEL = 5;

/** Runs `zlib` over one header block with a sync flush, keeping the stream's context. */
function pass(z: Inflate | Deflate, input: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const out: Buffer[] = [];
    let size = 0;
    const onData = (c: Buffer) => {
      size += c.length;
      if (size > MAX_HEADER_BLOCK) {
        cleanup();
        reject(new Error('header block too large'));
      } else out.push(c);
    };
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    const cleanup = () => {
      z.off('data', onData);
      z.off('error', onError);
    };
    z.on('data', onData);
    z.on('error', onError);
    z.write(input);
    z.flush(constants.Z_SYNC_FLUSH, () => {
      cleanup();
      resolve(Buffer.concat(out));
    });
  });
}

function decodeHeaders(block: Buffer): Record<string, string> {
  const headers: Record<string, string> = {};
  let off = 0;
  const need = (n: number) => {
    if (off + n > block.length) throw new Error('truncated header block');
  };
  need(4);
  const count = block.readUInt32BE(off);
  off += 4;
  for (let i = 0; i < count; i++) {
    need(4);
    const nl = block.readUInt32BE(off);
    off += 4;
    need(nl);
    const name = block.toString('utf8', off, off + nl).toLowerCase();
    off += nl;
    need(4);
    const vl = block.readUInt32BE(off);
    off += 4;
    need(vl);
    headers[name] = block.toString('utf8', off, off + vl).split('\0')[0]!;
    off += vl;
  }
  return headers;
}

function encodeHeaders(headers: Record<string, string>): Buffer {
  const parts: Buffer[] = [];
  const count = Buffer.alloc(4);
  count.writeUInt32BE(Object.keys(headers).length);
  parts.push(count);
  for (const [name, value] of Object.entries(headers)) {
    for (const text of [name.toLowerCase(), value]) {
      const len = Buffer.alloc(4);
      len.writeUInt32BE(Buffer.byteLength(text));
      parts.push(len, Buffer.from(text, 'utf8'));
    }
  }
  return Buffer.concat(parts);
}

function controlFrame(type: number, flags: number, body: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt16BE(0x8000 | VERSION, 0);
  head.writeUInt16BE(type, 2);
  head.writeUInt32BE(body.length, 4);
  head[4] = flags;
  return Buffer.concat([head, body]);
}

function dataFrame(streamId: number, flags: number, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(streamId & 0x7fffffff, 0);
  head.writeUInt32BE(data.length, 4);
  head[4] = flags;
  return Buffer.concat([head, data]);
}

/** One stream the peer opened. */
export class SpdyStream extends EventEmitter {
  readonly id: number;
  readonly headers: Record<string, string>;
  #session: SpdySession;
  #ended = false;
  /** The peer finished sending (FIN) or reset the stream. */
  remoteClosed = false;

  constructor(session: SpdySession, id: number, headers: Record<string, string>) {
    super();
    this.#session = session;
    this.id = id;
    this.headers = headers;
  }

  /** Sends bytes on the stream, split into frames. */
  write(data: Buffer): void {
    if (this.#ended) return;
    for (let off = 0; off < data.length; off += MAX_DATA) this.#session.send(dataFrame(this.id, 0, data.subarray(off, off + MAX_DATA)));
  }

  /** Ends our side of the stream (FIN). */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#session.send(dataFrame(this.id, FLAG_FIN, Buffer.alloc(0)));
  }

  /** Resets the stream. */
  reset(status = RST_CANCEL): void {
    this.#ended = true;
    const body = Buffer.alloc(8);
    body.writeUInt32BE(this.id & 0x7fffffff, 0);
    body.writeUInt32BE(status, 4);
    this.#session.send(controlFrame(RST_STREAM, 0, body));
    this.#session.forget(this.id);
  }
}

/**
 * The session: emits `stream` (a SpdyStream, after its SYN_REPLY went out), `close`, and `error`
 * for a protocol error (the session is then closed). Streams emit `data` (Buffer), `end` (the
 * peer's FIN) and `reset`.
 */
export class SpdySession extends EventEmitter {
  readonly #socket: Duplex;
  readonly #inflate = createInflate({ dictionary: SPDY3_DICTIONARY });
  readonly #deflate = createDeflate({ dictionary: SPDY3_DICTIONARY });
  readonly #streams = new Map<number, SpdyStream>();
  #buffer: Buffer = Buffer.alloc(0);
  /** Frames are handled one after another: header blocks share one zlib context. */
  #work: Promise<void> = Promise.resolve();
  #closed = false;

  /** `initial`: bytes already read from the socket (after an HTTP upgrade). */
  constructor(socket: Duplex, initial?: Buffer) {
    super();
    this.#socket = socket;
    if (initial?.length) this.#onData(initial);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('close', () => this.close());
    socket.on('error', () => this.close());
  }

  get streams(): number {
    return this.#streams.size;
  }

  send(frame: Buffer): void {
    if (!this.#closed && !this.#socket.destroyed) this.#socket.write(frame);
  }

  forget(id: number): void {
    this.#streams.delete(id);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const s of this.#streams.values()) s.emit('reset');
    this.#streams.clear();
    this.#inflate.close();
    this.#deflate.close();
    this.#socket.destroy();
    this.emit('close');
  }

  #onData(chunk: Buffer): void {
    this.#buffer = this.#buffer.length ? Buffer.concat([this.#buffer, chunk]) : chunk;
    while (this.#buffer.length >= 8) {
      const length = this.#buffer.readUInt32BE(4) & 0xffffff;
      if (this.#buffer.length < 8 + length) break;
      const frame = this.#buffer.subarray(0, 8 + length);
      this.#buffer = this.#buffer.subarray(8 + length);
      this.#work = this.#work.then(() => this.#frame(frame)).catch((err: unknown) => {
        this.emit('error', err);
        this.close();
      });
    }
  }

  async #frame(frame: Buffer): Promise<void> {
    if (this.#closed) return;
    const flags = frame[4]!;
    const body = frame.subarray(8);
    if ((frame[0]! & 0x80) === 0) {
      const stream = this.#streams.get(frame.readUInt32BE(0) & 0x7fffffff);
      if (!stream) return;
      if (body.length) stream.emit('data', Buffer.from(body));
      if (flags & FLAG_FIN) this.#remoteEnd(stream);
      return;
    }
    const version = frame.readUInt16BE(0) & 0x7fff;
    if (version !== VERSION) throw new Error(`SPDY version ${version} is not spoken here (3 is)`);
    const type = frame.readUInt16BE(2);
    switch (type) {
      case SYN_STREAM: {
        const id = body.readUInt32BE(0) & 0x7fffffff;
        const headers = decodeHeaders(await pass(this.#inflate, body.subarray(10)));
        const stream = new SpdyStream(this, id, headers);
        this.#streams.set(id, stream);
        const reply = Buffer.alloc(4);
        reply.writeUInt32BE(id, 0);
        this.send(controlFrame(SYN_REPLY, 0, Buffer.concat([reply, await pass(this.#deflate, encodeHeaders({}))])));
        this.emit('stream', stream);
        if (flags & FLAG_FIN) this.#remoteEnd(stream);
        return;
      }
      case HEADERS:
        await pass(this.#inflate, body.subarray(4)); // keeps the compression context in step
        return;
      case RST_STREAM: {
        const stream = this.#streams.get(body.readUInt32BE(0) & 0x7fffffff);
        if (!stream) return;
        this.#streams.delete(stream.id);
        stream.remoteClosed = true;
        stream.emit('reset');
        return;
      }
      case PING:
        // The peer's pings (odd ids from a client) are answered; ours we never send.
        if (body.readUInt32BE(0) % 2 === 1) this.send(frame);
        return;
      case GOAWAY:
        this.close();
        return;
      default:
        return; // SETTINGS, WINDOW_UPDATE, NOOP and the rest: nothing to do
    }
  }

  #remoteEnd(stream: SpdyStream): void {
    stream.remoteClosed = true;
    stream.emit('end');
  }
}
