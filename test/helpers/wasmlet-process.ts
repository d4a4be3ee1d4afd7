/**
 * `wasmlet` commands as real child processes (`node bin/wasmlet.mjs …`), the way an operator
 * runs them: long-running ones (`host`, `provider`) are started and waited on by their output;
 * short ones (`ctl …`) run to completion. Children still running when the test process exits
 * are killed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

const root = fileURLToPath(new URL('../..', import.meta.url));
const bin = join(root, 'bin', 'wasmlet.mjs');

const live = new Set<ChildProcess>();
let hooked = false;
function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.once('exit', () => {
    for (const c of live) c.kill('SIGKILL');
  });
}

export interface WasmletProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Everything written to stdout and stderr so far. */
  output(): string;
  /** Resolves when the output matches; rejects (with the output) on timeout or exit. */
  waitFor(pattern: string | RegExp, timeoutMs?: number): Promise<RegExpMatchArray | string>;
  /** Resolves with the exit code (null when killed by a signal) once the process ended. */
  readonly exited: Promise<number | null>;
  readonly running: boolean;
  /** Sends `signal` (default SIGTERM), waits up to `timeoutMs` (default 10000) for the exit, then SIGKILLs. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | null>;
  /** SIGKILL and wait for the exit. */
  kill(): Promise<void>;
}

/** Starts `wasmlet ARGS…` with `env` added to this process's environment. */
export function startWasmlet(args: string[], env: Record<string, string> = {}): WasmletProcess {
  hookExit();
  const child = spawn(process.execPath, [bin, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  live.add(child);
  let out = '';
  let done = false;
  const waiters = new Set<() => void>();
  const onData = (d: Buffer) => {
    out += d.toString('utf8');
    for (const w of [...waiters]) w();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => {
      done = true;
      live.delete(child);
      for (const w of [...waiters]) w();
      resolve(code);
    });
  });
  const proc: WasmletProcess = {
    child,
    pid: child.pid!,
    output: () => out,
    exited,
    get running() {
      return !done;
    },
    waitFor(pattern, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = typeof pattern === 'string' ? (out.includes(pattern) ? pattern : null) : out.match(pattern);
          if (m) {
            finish();
            resolve(m);
          } else if (done) {
            finish();
            reject(new Error(`wasmlet ${args.join(' ')} exited before printing ${String(pattern)}:\n${out.slice(-3000)}`));
          }
        };
        const timer = setTimeout(() => {
          finish();
          reject(new Error(`wasmlet ${args.join(' ')} did not print ${String(pattern)} within ${timeoutMs} ms:\n${out.slice(-3000)}`));
        }, timeoutMs);
        const finish = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    async stop(signal = 'SIGTERM', timeoutMs = 10_000) {
      if (done) return exited;
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
    async kill() {
      if (!done) child.kill('SIGKILL');
      await exited;
    },
  };
  return proc;
}

/** Runs `wasmlet ARGS…` to completion; resolves with its exit code and output. */
export async function runWasmlet(args: string[], env: Record<string, string> = {}, timeoutMs = 30_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  hookExit();
  const child = spawn(process.execPath, [bin, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  live.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  clearTimeout(timer);
  live.delete(child);
  return { code, stdout, stderr };
}
