/**
 * Replay defences: a message that verifies is still refused when it was seen before.
 *
 * - `SequenceWindow`, for invocation batches (many per second): each sending bus has a random
 *   session id and numbers its batches; a receiver keeps, per (sender, session), the highest
 *   number seen and a bitmap of the `size` numbers below it. A number seen before, or below the
 *   window, is a replay. A session is forgotten once its last batch is older than the freshness
 *   window: any replay of it is then refused as stale by its authenticated send time.
 * - `NonceCache`, for control requests, events and replies to them (a few per second): every
 *   nonce seen within the freshness window, with its expiry. Full, it refuses new nonces rather
 *   than forget ones still fresh.
 */

/** Per-(sender, session) state of `SequenceWindow`. */
interface Session {
  /** Highest sequence number seen. */
  top: number;
  /** Bit i set: number `top - i` was seen (bit 0 is `top` itself). */
  bits: Uint32Array;
  /** The send time of the latest batch, ms. */
  lastSent: number;
}

export class SequenceWindow {
  readonly #size: number;
  readonly #freshnessMs: number;
  readonly #maxSessions: number;
  readonly #sessions = new Map<string, Session>();
  #sincePrune = 0;

  /** `size`: how far below the highest number a late batch is still accepted (multiple of 32). */
  constructor(options: { size?: number; freshnessMs: number; maxSessions?: number }) {
    this.#size = Math.max(32, Math.ceil((options.size ?? 4096) / 32) * 32);
    this.#freshnessMs = options.freshnessMs;
    this.#maxSessions = options.maxSessions ?? 65_536;
  }

  get sessions(): number {
    return this.#sessions.size;
  }

  /**
   * Records batch `seq` of `session` from `sender`, sent at `sent`. False when it was seen
   * already or is too far below the newest of its session (a replay).
   */
  accept(sender: string, session: string, seq: number, sent: number, now: number): boolean {
    if (!Number.isSafeInteger(seq) || seq < 0) return false;
    if (++this.#sincePrune >= 1024) this.#prune(now);
    const key = `${sender}/${session}`;
    let s = this.#sessions.get(key);
    if (s === undefined) {
      if (this.#sessions.size >= this.#maxSessions) {
        this.#prune(now);
        if (this.#sessions.size >= this.#maxSessions) return false;
      }
      s = { top: seq, bits: new Uint32Array(this.#size / 32), lastSent: sent };
      s.bits[0] = 1;
      this.#sessions.set(key, s);
      return true;
    }
    if (sent > s.lastSent) s.lastSent = sent;
    if (seq > s.top) {
      this.#shift(s, seq - s.top);
      s.top = seq;
      s.bits[0]! |= 1;
      return true;
    }
    const back = s.top - seq;
    if (back >= this.#size) return false;
    const word = back >>> 5;
    const bit = 1 << (back & 31);
    if ((s.bits[word]! & bit) !== 0) return false;
    s.bits[word]! |= bit;
    return true;
  }

  /** Moves the bitmap `by` places towards older numbers. */
  #shift(s: Session, by: number): void {
    const bits = s.bits;
    if (by >= this.#size) {
      bits.fill(0);
      return;
    }
    const words = by >>> 5;
    const shift = by & 31;
    for (let i = bits.length - 1; i >= 0; i--) {
      const from = i - words;
      let v = from >= 0 ? bits[from]! << shift : 0;
      if (shift !== 0 && from - 1 >= 0) v |= bits[from - 1]! >>> (32 - shift);
      bits[i] = v >>> 0;
    }
  }

  #prune(now: number): void {
    this.#sincePrune = 0;
    for (const [key, s] of this.#sessions) if (now - s.lastSent > this.#freshnessMs * 2) this.#sessions.delete(key);
  }
}

export class NonceCache {
  readonly #maxEntries: number;
  readonly #seen = new Map<string, number>();

  constructor(options: { maxEntries?: number } = {}) {
    this.#maxEntries = options.maxEntries ?? 100_000;
  }

  get size(): number {
    return this.#seen.size;
  }

  /** Records `nonce` until `expires` (ms). False when it is still recorded (a replay) or the cache is full of fresh ones. */
  accept(nonce: string, expires: number, now: number): boolean {
    const until = this.#seen.get(nonce);
    if (until !== undefined && until > now) return false;
    if (this.#seen.size >= this.#maxEntries) {
      for (const [k, t] of this.#seen) if (t <= now) this.#seen.delete(k);
      if (this.#seen.size >= this.#maxEntries) return false;
    }
    this.#seen.set(nonce, expires);
    return true;
  }
}
