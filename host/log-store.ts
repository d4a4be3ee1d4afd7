/**
 * An in-memory LogStore: one ring buffer per actor, bounded by record count and by bytes.
 *
 * Followers never slow writers down: `append` is synchronous, stores the record once and only
 * wakes followers that are waiting. Each follower keeps a cursor (a sequence number) into the
 * ring instead of a queue of its own, so a follower that falls behind costs no memory; if it
 * falls further behind than the ring holds, it skips the records that were evicted.
 */
import { z } from 'zod';
import { OptionsError } from './errors.ts';
import type { LogReadOptions, LogRecord, LogStore } from './types.ts';

export interface LogStoreOptions {
  /** Records kept per actor; the oldest are evicted first. Default 10 000. */
  maxRecordsPerActor?: number;
  /**
   * Bytes of message text (UTF-8) kept per actor; the oldest records are evicted first. A single
   * message longer than this is truncated to fit. Default 4 MiB.
   */
  maxBytesPerActor?: number;
}

const logStoreOptionsSchema = z
  .object({
    maxRecordsPerActor: z.number().int().min(1).max(10_000_000).default(10_000),
    maxBytesPerActor: z.number().int().min(1).default(4 * 1024 * 1024),
  })
  .strict();

/** Validate LogStoreOptions and fill in defaults. Throws OptionsError. */
export function parseLogStoreOptions(input: unknown = {}): Required<LogStoreOptions> {
  const parsed = logStoreOptionsSchema.safeParse(input ?? {});
  if (!parsed.success) throw new OptionsError(`invalid log store options: ${z.prettifyError(parsed.error)}`, { cause: parsed.error });
  return parsed.data;
}

/** One actor's ring. Record with sequence number `s` sits at slot `s % capacity`. */
class ActorLog {
  /** Grows lazily up to `capacity`, so idle actors cost little. */
  readonly records: (LogRecord | undefined)[] = [];
  readonly sizes: number[] = [];
  /** Sequence number of the oldest record kept. */
  first = 0;
  /** Sequence number the next record will get. */
  next = 0;
  bytes = 0;
  readonly followers = new Set<Follower>();
  constructor(readonly capacity: number) {}

  at(seq: number): LogRecord | undefined {
    return this.records[seq % this.capacity];
  }

  evictOldest(): void {
    const slot = this.first % this.capacity;
    this.bytes -= this.sizes[slot]!;
    this.records[slot] = undefined; // let the record be collected now, not when overwritten
    this.first++;
  }

  push(record: LogRecord, size: number): void {
    const slot = this.next % this.capacity;
    if (slot === this.records.length) {
      this.records.push(record);
      this.sizes.push(size);
    } else {
      this.records[slot] = record;
      this.sizes[slot] = size;
    }
    this.next++;
    this.bytes += size;
  }
}

const EMPTY_LOG = new ActorLog(1);

type Resolve = (result: IteratorResult<LogRecord, undefined>) => void;
const DONE: IteratorResult<LogRecord, undefined> = { done: true, value: undefined };

/** A reader of one actor's log: an AsyncIterableIterator with a cursor into the ring. */
class Follower implements AsyncIterableIterator<LogRecord, undefined> {
  private cursor: number;
  private done = false;
  /** next() calls waiting for a record (normally at most one). */
  private waiting: Resolve[] = [];
  private readonly onAbort: (() => void) | undefined;

  constructor(
    private readonly log: ActorLog,
    private readonly sinceMs: number | undefined,
    private readonly follow: boolean,
    private readonly signal: AbortSignal | undefined,
    tailLines: number | undefined,
  ) {
    this.cursor = tailLines === undefined ? log.first : Math.max(log.first, log.next - tailLines);
    if (signal?.aborted) {
      this.done = true;
      return;
    }
    // Only followers register anywhere; a plain read checks `signal.aborted` as it goes.
    if (follow) {
      log.followers.add(this);
      if (signal) {
        this.onAbort = () => this.end();
        signal.addEventListener('abort', this.onAbort, { once: true });
      }
    }
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** Take the next record at or after the cursor that passes the filter, if any. */
  private take(): LogRecord | undefined {
    const log = this.log;
    if (this.cursor < log.first) this.cursor = log.first; // fell behind: evicted records are gone
    while (this.cursor < log.next) {
      const record = log.at(this.cursor++)!;
      if (this.sinceMs === undefined || record.time >= this.sinceMs) return record;
    }
    return undefined;
  }

  next(): Promise<IteratorResult<LogRecord, undefined>> {
    if (this.done) return Promise.resolve(DONE);
    if (this.signal?.aborted) {
      this.end();
      return Promise.resolve(DONE);
    }
    if (this.waiting.length === 0) {
      const record = this.take();
      if (record) return Promise.resolve({ done: false, value: record });
    }
    if (!this.follow) {
      this.end();
      return Promise.resolve(DONE);
    }
    return new Promise<IteratorResult<LogRecord, undefined>>((resolve) => this.waiting.push(resolve));
  }

  return(): Promise<IteratorResult<LogRecord, undefined>> {
    this.end();
    return Promise.resolve(DONE);
  }

  /** Called by `append`: hand new records to waiting next() calls. */
  wake(): void {
    while (this.waiting.length > 0) {
      const record = this.take();
      if (!record) return;
      this.waiting.shift()!({ done: false, value: record });
    }
  }

  hasWaiters(): boolean {
    return this.waiting.length > 0;
  }

  /** End the stream and drop every reference this follower holds (listener, set membership). */
  end(): void {
    if (this.done) return;
    this.done = true;
    this.log.followers.delete(this);
    if (this.onAbort) this.signal!.removeEventListener('abort', this.onAbort);
    const waiting = this.waiting;
    this.waiting = [];
    for (const resolve of waiting) resolve(DONE);
  }
}

export class MemoryLogStore implements LogStore {
  private readonly options: Required<LogStoreOptions>;
  private readonly logs = new Map<string, ActorLog>();

  constructor(options: LogStoreOptions = {}) {
    this.options = parseLogStoreOptions(options);
  }

  private logOf(actor: string): ActorLog {
    let log = this.logs.get(actor);
    if (!log) {
      log = new ActorLog(this.options.maxRecordsPerActor);
      this.logs.set(actor, log);
    }
    return log;
  }

  append(actor: string, record: LogRecord): void {
    const log = this.logOf(actor);
    const maxBytes = this.options.maxBytesPerActor;
    let size = Buffer.byteLength(record.msg, 'utf8');
    if (size > maxBytes) {
      record = { ...record, msg: truncateUtf8(record.msg, maxBytes) };
      size = Buffer.byteLength(record.msg, 'utf8');
    }
    if (log.next - log.first === log.capacity) log.evictOldest();
    while (log.bytes + size > maxBytes && log.first < log.next) log.evictOldest();
    log.push(record, size);
    if (log.followers.size > 0) {
      for (const follower of log.followers) if (follower.hasWaiters()) follower.wake();
    }
  }

  read(actor: string, options: LogReadOptions = {}): AsyncIterable<LogRecord> {
    const { tailLines, sinceMs, follow = false, signal } = options;
    if (tailLines !== undefined && !(Number.isInteger(tailLines) && tailLines >= 0)) {
      throw new OptionsError(`tailLines must be a non-negative integer, got ${String(tailLines)}`);
    }
    if (sinceMs !== undefined && !Number.isFinite(sinceMs)) {
      throw new OptionsError(`sinceMs must be a finite number, got ${String(sinceMs)}`);
    }
    // A plain read of an actor with no records must not create state for it.
    const log = follow ? this.logOf(actor) : (this.logs.get(actor) ?? EMPTY_LOG);
    return new Follower(log, sinceMs, follow, signal, tailLines);
  }

  close(actor: string, options: { forget?: boolean } = {}): void {
    const log = this.logs.get(actor);
    if (!log) return;
    for (const follower of [...log.followers]) follower.end();
    if (options.forget) this.logs.delete(actor);
  }

  /** Records and bytes currently kept for `actor` (for tests and metrics). */
  stats(actor: string): { records: number; bytes: number; followers: number } {
    const log = this.logs.get(actor);
    return log ? { records: log.next - log.first, bytes: log.bytes, followers: log.followers.size } : { records: 0, bytes: 0, followers: 0 };
  }
}

/** The longest prefix of `text` whose UTF-8 encoding fits in `maxBytes`, without splitting a character. */
function truncateUtf8(text: string, maxBytes: number): string {
  const bytes = Buffer.from(text, 'utf8');
  let end = maxBytes;
  // Step back to the start of a character (continuation bytes are 0b10xxxxxx).
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end).toString('utf8');
}
