/**
 * Shared plumbing of the real-server test helpers (redis-server, nats-server, docker-registry):
 * spawn the binary, keep its last output for error messages, poll until it is ready, and kill
 * whatever a test leaves behind when the process exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';

const live = new Set<ChildProcess>();
let hooked = false;

function installExitHook(): void {
  if (hooked) return;
  hooked = true;
  process.once('exit', () => {
    for (const child of live) child.kill('SIGKILL');
  });
}

export function waitExit(child: ChildProcess, ms: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    child.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
  });
}

export interface SpawnUntilReadyOptions {
  binary: string;
  args: string[];
  /** e.g. `redis-server`; used in error messages. */
  name: string;
  /** What readiness means, for messages: e.g. `answering PING on port 1234`. */
  readiness: string;
  ready(): Promise<boolean>;
  startTimeoutMs: number;
}

/** Spawns a server and resolves once `ready()` says so; kills it and throws (with its last output) otherwise. */
export async function spawnUntilReady(o: SpawnUntilReadyOptions): Promise<ChildProcess> {
  installExitHook();
  const child = spawn(o.binary, o.args, { stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  child.once('exit', () => live.delete(child));
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-4000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let spawnError: Error | undefined;
  child.once('error', (err) => {
    spawnError = err;
  });
  const deadline = Date.now() + o.startTimeoutMs;
  while (Date.now() < deadline) {
    if (spawnError) throw new Error(`cannot run ${o.binary}: ${spawnError.message}`, { cause: spawnError });
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${o.name} exited (${child.exitCode ?? child.signalCode}) before ${o.readiness}: ${output.trim()}`);
    }
    if (await o.ready()) return child;
    await new Promise((r) => setTimeout(r, 25));
  }
  child.kill('SIGKILL');
  await waitExit(child, 2000);
  throw new Error(`${o.name} was not ${o.readiness} within ${o.startTimeoutMs} ms: ${output.trim()}`);
}

/** Runs `attempt` up to `times` times, `delayMs` apart, until it resolves; throws the last error. */
export async function retry<T>(times: number, attempt: () => Promise<T>, delayMs = 0): Promise<T> {
  let last: unknown;
  for (let i = 0; i < times; i++) {
    if (i > 0 && delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
    try {
      return await attempt();
    } catch (err) {
      last = err;
    }
  }
  throw last;
}

/** A helper's one live server process: stopped on demand, and started again on the same port. */
export class ServerHandle {
  #current: ChildProcess | undefined;

  constructor(child: ChildProcess) {
    this.#current = child;
  }

  get running(): boolean {
    return this.#current !== undefined;
  }

  /** Stops the process, if it runs, and waits for it to exit. */
  async halt(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const c = this.#current;
    this.#current = undefined;
    if (!c) return;
    c.kill(signal);
    await waitExit(c, 5000);
  }

  /** Stops it and launches it again; the kernel may hold the port a moment, so launching retries. */
  async restart(launch: () => Promise<ChildProcess>): Promise<void> {
    await this.halt('SIGTERM');
    this.#current = await retry(10, launch, 200);
  }
}

/**
 * Opens a raw socket to a line-protocol server, sends `send` (if any) once connected, and
 * resolves true when the first reply line starts with `expect`; false on error, close or 500 ms.
 */
export function lineProbe(port: number, expect: string, send?: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let reply = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('error', () => done(false));
    socket.once('close', () => done(false));
    if (send !== undefined) socket.once('connect', () => socket.write(send));
    socket.on('data', (chunk) => {
      reply += chunk.toString('latin1');
      if (reply.includes('\r\n')) done(reply.startsWith(expect));
    });
  });
}
