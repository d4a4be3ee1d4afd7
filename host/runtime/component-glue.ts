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

/** Bump when a rewrite changes: transpile caches key their folders on it. */
export const GLUE_REVISION = 2;

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
    if (!/(?:^|[;{}])\s*$/.test(src.slice(Math.max(0, start - 200), start))) return src;
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

/** The glue as the host stores it. */
export function optimizeGlue(glue: string): string {
  let out = glue.replace(DEBUG_LOG_DEFINITION, 'const _debugLog = () => {};');
  out = removeCallStatements(out, '_debugLog');
  return removeSyncTaskRecords(out);
}
