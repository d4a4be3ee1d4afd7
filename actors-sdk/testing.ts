/**
 * Testing an actor for real: build its project (with the build cache), start a wasmlet host
 * with in-memory key-value and logging providers linked to it, and send it HTTP requests as the
 * HTTP server capability would.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pino, { type Logger } from 'pino';
import { KeyValueProvider, LoggingProvider } from '../capabilities/index.ts';
import { decode, encode, Host, wapcRuntime, type ActorRuntime, type LogRecord } from '../host/index.ts';
// Not exported by host/index.ts yet.
import { createComponentRuntime } from '../host/index.ts';
import { buildActor, type BuiltActor } from './build.ts';

export interface TestActorOptions {
  /** Config values the actor reads. */
  config?: Record<string, string>;
  /** Link values for the key-value link (default: the in-memory store). `false`: no link. */
  keyvalue?: Record<string, string> | false;
  /** Link the logging capability. Default true. */
  logging?: boolean;
  /** Build cache. Default `<project>/.wasmlet/cache`. */
  cacheDir?: string;
  /** Signing keys for the test build. Default `<project>/.wasmlet/test-keys` (never the author's keys). */
  keysDir?: string;
  logger?: Logger;
}

export interface TestResponse {
  status: number;
  headers: Record<string, string | string[]>;
  body: Uint8Array;
  text(): string;
  json<T = unknown>(): T;
}

export interface TestActor {
  id: string;
  built: BuiltActor;
  host: Host;
  request(path: string, init?: { method?: string; query?: string; headers?: Record<string, string>; body?: string | Uint8Array }): Promise<TestResponse>;
  /** The actor's log lines so far (logging capability and console). */
  logs(): Promise<LogRecord[]>;
  stop(): Promise<void>;
}

export async function startTestActor(project: string | URL, options: TestActorOptions = {}): Promise<TestActor> {
  const dir = typeof project === 'string' ? project : fileURLToPath(project);
  const built = await buildActor(dir, {
    ...(options.cacheDir ? { cacheDir: options.cacheDir } : {}),
    keysDir: options.keysDir ?? join(dir, '.wasmlet', 'test-keys'),
    output: join(mkdtempSync(join(tmpdir(), 'wasmlet-actor-test-')), 'actor.wasm'),
  });
  const components = createComponentRuntime({ cacheDir: join(dir, '.wasmlet', 'components') });
  const config = options.config ?? {};
  // Config also travels in the payload, for hosts that do not hand start-time config to workers.
  const runtime: ActorRuntime = {
    kind: 'component',
    detect: (b, m) => components.detect(b, m),
    prepare: async (b, m) => {
      const p = await components.prepare(b, m);
      return { ...p, payload: { ...(p.payload as object), config } };
    },
  };
  const host = await Host.start({ workers: 1 }, { logger: options.logger ?? pino({ level: 'silent' }), runtimes: [wapcRuntime, runtime] });
  try {
    await host.addProvider(new KeyValueProvider());
    await host.addProvider(new LoggingProvider());
    const info = await host.startActor(built.bytes, { config });
    if (options.keyvalue !== false) await host.putLink({ actor: info.id, contract: 'wasmlet:keyvalue', values: options.keyvalue ?? {} });
    if (options.logging !== false) await host.putLink({ actor: info.id, contract: 'wasmlet:logging' });
    return {
      id: info.id,
      built,
      host,
      async request(path, init = {}) {
        const body = typeof init.body === 'string' ? new TextEncoder().encode(init.body) : (init.body ?? new Uint8Array(0));
        const out = decode<{ statusCode: number; header: Record<string, string | string[]>; body: Uint8Array }>(
          await host.invokeActor(info.id, 'HandleRequest', encode({ method: init.method ?? 'GET', path, queryString: init.query ?? '', header: init.headers ?? {}, body })),
        );
        const text = () => new TextDecoder().decode(out.body);
        return { status: out.statusCode, headers: out.header ?? {}, body: out.body, text, json: <T>() => JSON.parse(text()) as T };
      },
      async logs() {
        const lines: LogRecord[] = [];
        for await (const r of host.logs.read(info.id)) lines.push(r);
        return lines;
      },
      stop: () => host.stop(),
    };
  } catch (err) {
    await host.stop();
    throw err;
  }
}
