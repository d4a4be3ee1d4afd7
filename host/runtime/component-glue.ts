/**
 * Post-processing of jco's instantiation glue (written once, into the transpile cache). jco's
 * glue carries development scaffolding that costs time on every call between the host and a
 * component: a debug-log call (with freshly built argument objects) at every step, and, since
 * jco 1.15, a task record (a BigInt id, an AsyncTask with a dozen private fields, map and stack
 * bookkeeping) around every import and export call, which only async lowering ever reads.
 *
 * Each rewrite applies only when the glue has exactly the expected shape; otherwise that rewrite
 * is skipped and the glue keeps working as jco wrote it (merely slower).
 */

/** Bump when a rewrite (or the way the glue is made) changes: transpile caches key their folders on it. */
export const GLUE_REVISION = 4;

/**
 * jco's `_debugLog` reads `process.env.JCO_DEBUG` on every call; the host never sets it, so it
 * becomes a no-op even where its call sites could not be removed.
 */
const DEBUG_LOG_DEFINITION = /const _debugLog = \(\.\.\.args\) => \{\s*if \(!globalThis\?\.process\?\.env\?\.JCO_DEBUG\) \{ return; \}\s*console\.debug\(\.\.\.args\);\s*\};?/;

/** Where a call expression starting at `open` (an opening parenthesis) ends, skipping strings; -1 when it does not. */
function closingParen(src: string, open: number): number {
  let depth = 0;
  for (let i = open; i < src.length; i++) {
    const c = src[i];
    if (c === '"' || c === "'" || c === '`') {
      // Template literals in the glue's debug logs hold no `${…}` with quotes inside; a plain scan to the closing quote suffices.
      for (i++; i < src.length && src[i] !== c; i++) if (src[i] === '\\') i++;
      if (i >= src.length) return -1;
    } else if (c === '(' || c === '{' || c === '[') depth++;
    else if (c === ')' || c === '}' || c === ']') {
      depth--;
      if (depth === 0) return c === ')' ? i : -1;
    }
  }
  return -1;
}

/**
 * Removes every statement `name(…);`, leaving the definition of `name` alone. All or nothing:
 * when any call site is not a whole statement (its value is used), the source is returned as is.
 */
export function removeCallStatements(src: string, name: string): string {
  const site = new RegExp(`(^|[\\s;{}])${name}\\(`, 'g');
  const kept: string[] = [];
  let from = 0;
  for (let m = site.exec(src); m; m = site.exec(src)) {
    const start = m.index + m[1]!.length;
    if (/(?:function|const|let|var)\s*$/.test(src.slice(Math.max(0, start - 12), start))) continue;
    const close = closingParen(src, start + name.length);
    if (close < 0) return src;
    let end = close + 1;
    while (src[end] === ' ') end++;
    if (src[end] !== ';') return src;
    // A statement on its own: the preceding text must end a statement or open a block.
    const before = src.slice(Math.max(0, start - 200), start);
    if (!/[;{}]\s*$/.test(before) && !(start <= 200 && /^\s*$/.test(before))) return src;
    kept.push(src.slice(from, start));
    from = end + 1;
    site.lastIndex = from;
  }
  kept.push(src.slice(from));
  return kept.join('');
}

const TASK_START = /const (_\w+_currentTaskID) = startCurrentTask\(\d+, (?:true|false), '[^'\n]*'\);/g;
const TASK_END = /(^|[;{}\s])endCurrentTask\(\d+\);/g;

/**
 * Drops the per-call task records of synchronous calls. Only when nothing could read them: no
 * async lowering is used (`prepareCall`/`asyncStartCall` are never called) and no task id is
 * read after the call that made it.
 */
export function removeSyncTaskRecords(src: string): string {
  const called = (fn: string) => new RegExp(`(?<!function )\\b${fn}\\(`).test(src);
  if (called('prepareCall') || called('asyncStartCall')) return src;
  const ids = new Set<string>();
  let out = src.replace(TASK_START, (_all, id: string) => {
    ids.add(id);
    return '';
  });
  if (ids.size === 0) return src;
  for (const id of ids) if (new RegExp(`\\b${id}\\b`).test(out)) return src;
  out = out.replace(TASK_END, (_all, before: string) => before);
  // Every start needs its end removed too, or the bookkeeping would underflow.
  if (/\b(?:startCurrentTask|endCurrentTask)\(/.test(out.replace(/function (?:start|end)CurrentTask\(/g, ''))) return src;
  return out;
}

/** jco's string lowering: a TextEncoder buffer per string, then a copy into guest memory. */
const UTF8_ENCODE = `    let buf = utf8Encoder.encode(s);
    let ptr = realloc(0, 0, 1, buf.length);
    new Uint8Array(memory.buffer).set(buf, ptr);
    utf8EncodedLen = buf.length;
    return ptr;`;

/**
 * Short ASCII strings (methods, paths, header names, keys: most of what crosses) are written
 * straight into guest memory; anything else takes jco's path. The view is taken after
 * `realloc`, which may grow (and so replace) the memory's buffer.
 */
const UTF8_ENCODE_ASCII = `    if (s.length <= 64) {
      let ascii = true;
      for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) { ascii = false; break; }
      if (ascii) {
        const ptr = realloc(0, 0, 1, s.length);
        const view = new Uint8Array(memory.buffer, ptr, s.length);
        for (let i = 0; i < s.length; i++) view[i] = s.charCodeAt(i);
        utf8EncodedLen = s.length;
        return ptr;
      }
    }
${UTF8_ENCODE}`;

/** Adds the ASCII path to jco's `utf8Encode` when its body is exactly jco's. */
export function fastAsciiLowering(src: string): string {
  const at = src.indexOf(UTF8_ENCODE);
  if (at < 0 || src.indexOf(UTF8_ENCODE, at + 1) >= 0) return src;
  if (!/function utf8Encode\(s, realloc, memory\) \{[^}]*\}\s*$/.test(src.slice(Math.max(0, at - 300), at))) return src;
  return src.slice(0, at) + UTF8_ENCODE_ASCII + src.slice(at + UTF8_ENCODE.length);
}

/** The glue as the host stores it. */
export function optimizeGlue(glue: string): string {
  let out = glue.replace(DEBUG_LOG_DEFINITION, 'const _debugLog = () => {};');
  out = removeCallStatements(out, '_debugLog');
  out = removeSyncTaskRecords(out);
  return fastAsciiLowering(out);
}
