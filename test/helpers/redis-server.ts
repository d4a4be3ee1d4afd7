/**
 * Starts a real `redis-server` for a test: loopback only, on a free port, no persistence, in a
 * temp dir, in the foreground (so it dies with its handle). Never uses a Redis the machine
 * already runs.
 */
import type { ChildProcess } from 'node:child_process';
import { lineProbe, retry, ServerHandle, spawnUntilReady } from './server-process.ts';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface RedisServer {
  /** `redis://127.0.0.1:<port>` */
  url: string;
  port: number;
  /** Stops the server and removes its temp dir. Safe to call twice. */
  stop(): Promise<void>;
  /** Stops the server (if running) and starts it again on the same port, empty. */
  restart(): Promise<void>;
  /** Stops the server but keeps the port and dir, for fault tests (`restart()` brings it back). */
  kill(): Promise<void>;
}

export interface RedisServerOptions {
  /** Binary to run. Default `redis-server` from PATH. */
  binary?: string;
  /** How long to wait for the first PONG, ms. Default 10000. */
  startTimeoutMs?: number;
}



/** A port that was free a moment ago (the kernel picks it). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

async function launch(binary: string, port: number, dir: string, startTimeoutMs: number): Promise<ChildProcess> {
  // prettier-ignore
  const args = [
    '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir,
    '--daemonize', 'no', '--protected-mode', 'yes', '--logfile', '', '--loglevel', 'warning',
  ];
  return spawnUntilReady({ binary, args, name: 'redis-server', readiness: `answering PING on port ${port}`, ready: () => lineProbe(port, '+PONG', 'PING\r\n'), startTimeoutMs });
}

export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServer> {
  const binary = options.binary ?? 'redis-server';
  const startTimeoutMs = options.startTimeoutMs ?? 10_000;
  const dir = await mkdtemp(join(tmpdir(), 'wasmlet-redis-'));

  // Another process may grab the free port between our probe and redis binding it: retry.
  let port = 0;
  let child: ChildProcess;
  try {
    child = await retry(5, async () => {
      port = await freePort();
      return launch(binary, port, dir, startTimeoutMs);
    });
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }

  const server = new ServerHandle(child);
  let removed = false;
  const kill = () => server.halt();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    kill,
    async restart() {
      if (removed) throw new Error('redis-server was stopped for good');
      await server.restart(() => launch(binary, port, dir, startTimeoutMs));
    },
    async stop() {
      await kill();
      if (removed) return;
      removed = true;
      await rm(dir, { recursive: true, force: true });
    },
  };
}
