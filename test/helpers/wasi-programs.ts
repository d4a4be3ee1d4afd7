/**
 * Small WASI (preview1) command modules for node agent tests, written in WAT: print lines and
 * exit, print files from preopened directories, append a line to a file, create a file once,
 * open a path, loop forever. Preopened directories are fds 3, 4, … in the order of the
 * container's volumeMounts.
 */
import { compileWat } from './wat.ts';

const NS = 'wasi_snapshot_preview1';
const IMPORTS = `
  (import "${NS}" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "${NS}" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "${NS}" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "${NS}" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 2)`;

/** Escapes text for a WAT data string. */
function watString(text: string): string {
  return [...Buffer.from(text, 'utf8')].map((b) => '\\' + b.toString(16).padStart(2, '0')).join('');
}

/** Data segments for strings from offset 1024, with (offset, length) of each. */
function layout(strings: string[]): { data: string; at: { off: number; len: number }[] } {
  let off = 1024;
  const at: { off: number; len: number }[] = [];
  let data = '';
  for (const s of strings) {
    const len = Buffer.byteLength(s, 'utf8');
    data += `\n  (data (i32.const ${off}) "${watString(s)}")`;
    at.push({ off, len });
    off += len + 8;
  }
  return { data, at };
}

/** Writes bytes at (off, len) to fd, through the iovec at 0 (nwritten at 8). */
const write = (fd: number, off: number, len: number) =>
  `(i32.store (i32.const 0) (i32.const ${off})) (i32.store (i32.const 4) (i32.const ${len})) (drop (call $fd_write (i32.const ${fd}) (i32.const 0) (i32.const 1) (i32.const 8)))`;

/** Prints `stdout` lines, then `stderr` lines, then exits with `code`. */
export function printAndExitWat(o: { stdout?: string[]; stderr?: string[]; code?: number }): string {
  const out = (o.stdout ?? []).map((l) => `${l}\n`);
  const err = (o.stderr ?? []).map((l) => `${l}\n`);
  const { data, at } = layout([...out, ...err]);
  const body = at.map((a, i) => write(i < out.length ? 1 : 2, a.off, a.len)).join('\n    ');
  return `(module ${IMPORTS}${data}
  (func (export "_start")
    ${body}
    (call $proc_exit (i32.const ${o.code ?? 0}))))`;
}

/**
 * For each file (relative to preopen `fd`): prints `path: ` and its content (up to 4 KiB) to
 * stdout; a file that cannot be opened prints `cannot open path` to stderr and exits 2.
 */
export function catFilesWat(files: { fd: number; path: string }[]): string {
  const { data, at } = layout([...files.map((f) => f.path), ...files.map((f) => `${f.path}: `), 'cannot open ', '\n']);
  const n = files.length;
  const nl = at[2 * n + 1]!;
  const cannot = at[2 * n]!;
  const steps = files
    .map((f, i) => {
      const p = at[i]!;
      const label = at[n + i]!;
      return `
    (if (call $path_open (i32.const ${f.fd}) (i32.const 1) (i32.const ${p.off}) (i32.const ${p.len}) (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 16))
      (then ${write(2, cannot.off, cannot.len)} ${write(2, p.off, p.len)} ${write(2, nl.off, nl.len)} (call $proc_exit (i32.const 2))))
    (i32.store (i32.const 32) (i32.const 8192)) (i32.store (i32.const 36) (i32.const 4096))
    (drop (call $fd_read (i32.load (i32.const 16)) (i32.const 32) (i32.const 1) (i32.const 40)))
    ${write(1, label.off, label.len)}
    ${`(i32.store (i32.const 0) (i32.const 8192)) (i32.store (i32.const 4) (i32.load (i32.const 40))) (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))`}
    ${write(1, nl.off, nl.len)}`;
    })
    .join('');
  return `(module ${IMPORTS}${data}
  (func (export "_start")${steps}
    (call $proc_exit (i32.const 0))))`;
}

/** Appends `text` + newline to `path` under preopen `fd` (creating it), prints `text`, exits 0 (3 when it cannot). */
export function appendLineWat(fd: number, path: string, text: string): string {
  const { data, at } = layout([path, `${text}\n`]);
  const [p, t] = at as [{ off: number; len: number }, { off: number; len: number }];
  return `(module ${IMPORTS}${data}
  (func (export "_start")
    (if (call $path_open (i32.const ${fd}) (i32.const 1) (i32.const ${p.off}) (i32.const ${p.len}) (i32.const 1) (i64.const 66) (i64.const 0) (i32.const 1) (i32.const 16))
      (then (call $proc_exit (i32.const 3))))
    (i32.store (i32.const 0) (i32.const ${t.off})) (i32.store (i32.const 4) (i32.const ${t.len}))
    (drop (call $fd_write (i32.load (i32.const 16)) (i32.const 0) (i32.const 1) (i32.const 8)))
    ${write(1, t.off, t.len)}
    (call $proc_exit (i32.const 0))))`;
}

/** Creates `path` under preopen `fd` exclusively: exits 1 when it created it (first run), 0 when it existed. */
export function failOnceWat(fd: number, path: string): string {
  const { data, at } = layout([path]);
  const p = at[0]!;
  return `(module ${IMPORTS}${data}
  (func (export "_start")
    (call $proc_exit (i32.eqz (call $path_open (i32.const ${fd}) (i32.const 1) (i32.const ${p.off}) (i32.const ${p.len}) (i32.const 5) (i64.const 66) (i64.const 0) (i32.const 0) (i32.const 16))))))`;
}

/** Tries to open `path` under preopen 3 for reading: exits 0 when it opened, else with the errno. */
export function openWat(path: string): string {
  const { data, at } = layout([path]);
  const p = at[0]!;
  return `(module ${IMPORTS}${data}
  (func (export "_start")
    (call $proc_exit (call $path_open (i32.const 3) (i32.const 1) (i32.const ${p.off}) (i32.const ${p.len}) (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 16)))))`;
}

/** Prints `started`, then spins forever. */
export function loopForeverWat(): string {
  const { data, at } = layout(['started\n']);
  return `(module ${IMPORTS}${data}
  (func (export "_start")
    ${write(1, at[0]!.off, at[0]!.len)}
    (loop $l (br $l))))`;
}

export async function wasiProgram(wat: string): Promise<Uint8Array> {
  return compileWat(wat);
}
