/**
 * The few WASI 0.2 imports a componentize-js actor keeps (its engine's clocks, randomness, and
 * the stderr stream it writes uncaught errors to), served directly in the worker: wall and
 * monotonic clocks read at call time, randomness from the OS. Streams other than stderr do not
 * exist in the world, so they are never handed out.
 */
import { randomFillSync } from 'node:crypto';

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/** A pollable that becomes ready at a monotonic instant (ns); stream pollables are always ready. */
class Pollable {
  constructor(readonly readyAtNs = 0n) {}
  ready(): boolean {
    return process.hrtime.bigint() >= this.readyAtNs;
  }
  /** Sleeps the worker until ready; the pool's deadline still bounds the call. */
  block(): void {
    const ms = Number((this.readyAtNs - process.hrtime.bigint()) / 1_000_000n);
    if (ms > 0) Atomics.wait(sleeper, 0, 0, ms);
  }
}

class IoError {
  toDebugString(): string {
    return 'I/O error';
  }
}

class InputStream {}

/** An output stream that hands complete lines to `sink`. */
class LineOutputStream {
  #pending = '';
  readonly #decoder = new TextDecoder();
  constructor(readonly sink: (line: string) => void) {}
  checkWrite(): bigint {
    return 1n << 20n;
  }
  write(bytes: Uint8Array): void {
    this.#pending += this.#decoder.decode(bytes, { stream: true });
    let nl: number;
    while ((nl = this.#pending.indexOf('\n')) >= 0) {
      const line = this.#pending.slice(0, nl);
      this.#pending = this.#pending.slice(nl + 1);
      if (line) this.sink(line);
    }
  }
  blockingWriteAndFlush(bytes: Uint8Array): void {
    this.write(bytes);
    this.flush();
  }
  flush(): void {
    if (this.#pending) this.sink(this.#pending);
    this.#pending = '';
  }
  blockingFlush(): void {
    this.flush();
  }
  subscribe(): Pollable {
    return new Pollable();
  }
}

function poll(list: Pollable[]): Uint32Array {
  if (list.length === 0) return new Uint32Array(0);
  let ready = list.flatMap((p, i) => (p.ready() ? [i] : []));
  if (ready.length === 0) {
    // Wait for the earliest one, then report everything ready by then.
    const earliest = list.reduce((a, b) => (a.readyAtNs <= b.readyAtNs ? a : b));
    earliest.block();
    ready = list.flatMap((p, i) => (p.ready() ? [i] : []));
  }
  return Uint32Array.from(ready);
}

/** WASI imports keyed as jco's instantiation glue reads them (interface names without versions). */
export function wasiImports(stderrLine: (line: string) => void): Record<string, Record<string, unknown>> {
  const stderr = new LineOutputStream(stderrLine);
  return {
    'wasi:cli/stderr': { getStderr: () => stderr },
    'wasi:clocks/monotonic-clock': {
      now: () => process.hrtime.bigint(),
      resolution: () => 1n,
      subscribeDuration: (ns: bigint) => new Pollable(process.hrtime.bigint() + ns),
      subscribeInstant: (at: bigint) => new Pollable(at),
    },
    'wasi:clocks/wall-clock': {
      now: () => {
        const ms = Date.now();
        return { seconds: BigInt(Math.floor(ms / 1000)), nanoseconds: (ms % 1000) * 1_000_000 };
      },
      resolution: () => ({ seconds: 0n, nanoseconds: 1_000_000 }),
    },
    'wasi:io/error': { Error: IoError },
    'wasi:io/poll': { Pollable, poll },
    'wasi:io/streams': { InputStream, OutputStream: LineOutputStream },
    'wasi:random/random': {
      getRandomBytes: (len: bigint) => randomFillSync(new Uint8Array(Number(len))),
      getRandomU64: () => randomFillSync(new BigUint64Array(1))[0]!,
    },
    'wasi:random/insecure': {
      getInsecureRandomBytes: (len: bigint) => randomFillSync(new Uint8Array(Number(len))),
      getInsecureRandomU64: () => randomFillSync(new BigUint64Array(1))[0]!,
    },
    'wasi:random/insecure-seed': {
      insecureSeed: () => {
        const a = randomFillSync(new BigUint64Array(2));
        return [a[0]!, a[1]!];
      },
    },
  };
}

/** Flushes what a stderr stream holds (a crash may end without a newline). */
export function flushStderr(imports: Record<string, Record<string, unknown>>): void {
  const get = imports['wasi:cli/stderr']?.getStderr as (() => LineOutputStream) | undefined;
  get?.().flush();
}
