/**
 * NATS subjects as the messaging contract uses them: validation, wildcard matching (for the
 * in-process broker), `SUBSCRIPTION` parsing (`subject[|queue]`, comma-separated), and the
 * reserved subjects an actor may not reach.
 *
 * Reserved: subjects whose first token starts with `$` (the server's system, JetStream and KV
 * APIs) or is one of `reservedTokens` (default `wasmlet`: the lattice's own subjects, when the
 * messaging NATS is the lattice's). Subscriptions are also refused when their first token is a
 * wildcard (they would match reserved subjects) or `_INBOX` (replies meant for other clients);
 * publishing to `_INBOX.…` stays allowed, since that is how an actor answers a request.
 */
import { LinkError, OperationError } from '../errors.ts';

export interface Subscription {
  subject: string;
  /** Queue group: each message goes to one member of the group. */
  queue?: string;
}

const TOKEN = /^[^\s.*>]+$/;
const QUEUE = /^[^\s*>]+$/;

/** Throws a message naming what is wrong, or returns the subject's tokens. */
function tokens(subject: string, wildcards: boolean): string[] {
  if (subject === '') throw new Error('the subject is empty');
  if (subject.length > 1024) throw new Error('the subject is longer than 1024 characters');
  const parts = subject.split('.');
  parts.forEach((t, i) => {
    if (wildcards && (t === '*' || (t === '>' && i === parts.length - 1))) return;
    if (!TOKEN.test(t)) {
      throw new Error(t === '' ? `subject ${JSON.stringify(subject)} has an empty token` : wildcards ? `subject ${JSON.stringify(subject)} has an invalid token ${JSON.stringify(t)}` : `subject ${JSON.stringify(subject)} is not a plain subject (no wildcards or whitespace)`);
    }
  });
  return parts;
}

export class SubjectRules {
  readonly #reserved: ReadonlySet<string>;

  constructor(reservedTokens: readonly string[]) {
    this.#reserved = new Set(reservedTokens);
  }

  #isReserved(first: string): boolean {
    return first.startsWith('$') || this.#reserved.has(first);
  }

  /** A subject to publish to (no wildcards, not reserved). Throws OperationError BAD_REQUEST. */
  checkPublish(op: string, subject: string): void {
    let parts: string[];
    try {
      parts = tokens(subject, false);
    } catch (err) {
      throw new OperationError('BAD_REQUEST', `${op}: ${(err as Error).message}`);
    }
    if (this.#isReserved(parts[0]!)) throw new OperationError('BAD_REQUEST', `${op}: subject ${JSON.stringify(subject)} is reserved`);
  }

  /** `SUBSCRIPTION` (and waSCC's `QUEUEGROUP_NAME`, the queue of entries without their own). Throws LinkError. */
  parseSubscriptions(text: string | undefined, defaultQueue: string | undefined, max: number): Subscription[] {
    if (defaultQueue !== undefined && defaultQueue !== '' && !QUEUE.test(defaultQueue)) throw new LinkError(`QUEUEGROUP_NAME ${JSON.stringify(defaultQueue)} is not a queue group name`);
    if (text === undefined || text.trim() === '') return [];
    const out: Subscription[] = [];
    const seen = new Set<string>();
    for (const raw of text.split(',')) {
      const entry = raw.trim();
      if (entry === '') throw new LinkError(`SUBSCRIPTION ${JSON.stringify(text)} has an empty entry`);
      const bar = entry.indexOf('|');
      const subject = (bar < 0 ? entry : entry.slice(0, bar)).trim();
      const queue = bar < 0 ? defaultQueue || undefined : entry.slice(bar + 1).trim();
      let parts: string[];
      try {
        parts = tokens(subject, true);
      } catch (err) {
        throw new LinkError(`SUBSCRIPTION: ${(err as Error).message}`);
      }
      const first = parts[0]!;
      if (first === '*' || first === '>' || first === '_INBOX' || this.#isReserved(first)) {
        throw new LinkError(`SUBSCRIPTION: ${JSON.stringify(subject)} is not allowed (it starts with ${first}, which reaches reserved subjects)`);
      }
      if (queue !== undefined && !QUEUE.test(queue)) throw new LinkError(`SUBSCRIPTION: queue group ${JSON.stringify(queue)} in ${JSON.stringify(entry)} is not a queue group name`);
      const key = `${subject}|${queue ?? ''}`;
      if (seen.has(key)) continue;
      seen.add(key);
      out.push(queue === undefined ? { subject } : { subject, queue });
    }
    if (out.length > max) throw new LinkError(`SUBSCRIPTION lists ${out.length} subscriptions; at most ${max} per link`);
    return out;
  }
}

/** Whether `subject` (plain) matches `pattern` (NATS wildcards `*` and trailing `>`). */
export function subjectMatches(pattern: string, subject: string): boolean {
  if (pattern === subject) return true;
  const p = pattern.split('.');
  const s = subject.split('.');
  for (let i = 0; i < p.length; i++) {
    const t = p[i]!;
    if (t === '>') return s.length > i;
    if (i >= s.length) return false;
    if (t !== '*' && t !== s[i]) return false;
  }
  return p.length === s.length;
}
