/**
 * The demos' images, made available by the sandbox: the wasm files that ship in `demos/` are
 * pushed to its registry at start, under the references the demos' k8s.yaml name
 * (`127.0.0.1:5000/wasmlet/<demo>:v1`); the TypeScript demos are built (about 15 s each, cached
 * after the first time) and pushed in the background, so a pod applied before its image is there
 * backs off and starts once it is.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { buildActor } from '../../actors-sdk/index.ts';
import { pushWasm } from '../oci/pusher.ts';

/** The registry host the demos' manifests name. */
export const DEMO_REGISTRY = '127.0.0.1:5000';

/** The project's root (the folder holding `demos/`), wherever it is installed. */
export const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Demos whose wasm ships in the repository: image name → file under `demos/`. */
export const SHIPPED_DEMOS: Record<string, string> = {
  'wascc-echo': 'wascc-echo/echo.wasm',
  'wascc-kvcounter': 'wascc-kvcounter/kvcounter.wasm',
  'hello-world-wasi': 'hello-world-wasi/hello-world-wasi.wasm',
  'hello-world-wasi-rust': 'wasi/hello-world-rust/hello-world-wasi-rust.wasm',
};

/** TypeScript demos, built from source by the sandbox: image name → project folder under `demos/`. */
export const BUILT_DEMOS: Record<string, string> = { hello: 'hello', 'kv-counter': 'kv-counter', logger: 'logger' };

export function demoImage(name: string): string {
  return `${DEMO_REGISTRY}/wasmlet/${name}:v1`;
}

/** Pushes the shipped demos to `registryHost` (under `wasmlet/<name>:v1`); resolves with what was pushed. */
export async function pushShippedDemos(registryHost: string, logger: Logger): Promise<string[]> {
  const pushed: string[] = [];
  for (const [name, file] of Object.entries(SHIPPED_DEMOS)) {
    const bytes = await readFile(join(PROJECT_ROOT, 'demos', file));
    await pushWasm(bytes, `${registryHost}/wasmlet/${name}:v1`, { logger });
    pushed.push(name);
  }
  return pushed;
}

/**
 * Builds each TypeScript demo and pushes it; never rejects (a demo that fails to build is logged,
 * and its pods back off pulling). Signing keys and the build cache live under `dataDir`.
 */
export async function buildAndPushDemos(registryHost: string, dataDir: string, logger: Logger, signal: AbortSignal): Promise<string[]> {
  const pushed: string[] = [];
  for (const [name, dir] of Object.entries(BUILT_DEMOS)) {
    if (signal.aborted) break;
    const started = Date.now();
    try {
      const built = await buildActor(join(PROJECT_ROOT, 'demos', dir), { keysDir: join(dataDir, 'keys'), cacheDir: join(dataDir, 'build-cache'), output: join(dataDir, 'demos', `${name}.wasm`) });
      if (signal.aborted) break;
      await pushWasm(await readFile(built.path), `${registryHost}/wasmlet/${name}:v1`, { logger });
      pushed.push(name);
      logger.info({ demo: name, ms: Date.now() - started }, 'demo built and pushed');
    } catch (err) {
      logger.warn({ err, demo: name }, 'demo could not be built: its pods will not find their image');
    }
  }
  return pushed;
}
