/**
 * TypeScript component actors for tests, built with the actors SDK once per run: componentize
 * results are cached in a temp folder shared by every test file and process (keyed by a digest
 * of the bundled source), so only the first build of unchanged source takes seconds.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildActor, type BuiltActor } from '../../actors-sdk/index.ts';
import { createComponentRuntime, type ComponentRuntime } from '../../host/index.ts';

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
/** Shared by all test processes of this machine: componentized (unsigned) actors by digest. */
export const TEST_BUILD_CACHE = join(tmpdir(), 'wasmlet-test-build-cache');
/** Shared test signing keys (never the author's own). */
export const TEST_KEYS_DIR = join(tmpdir(), 'wasmlet-test-keys');

export const toolboxProject = join(repoRoot, 'test', 'component-actors', 'toolbox');

const outDir = mkdtempSync(join(tmpdir(), 'wasmlet-test-actors-'));
const builds = new Map<string, Promise<BuiltActor>>();

/** Builds (or reuses this process's build of) the actor project in `dir`. */
export function buildTestActor(dir: string): Promise<BuiltActor> {
  let b = builds.get(dir);
  if (!b) {
    b = buildActor(dir, { cacheDir: TEST_BUILD_CACHE, keysDir: TEST_KEYS_DIR, output: join(outDir, `${builds.size}.wasm`) });
    builds.set(dir, b);
  }
  return b;
}

/** A component runtime with its own temp transpile cache (about 12 MB per component; removed when the process exits). */
export function testComponentRuntime(): ComponentRuntime {
  const cacheDir = mkdtempSync(join(tmpdir(), 'wasmlet-test-components-'));
  process.once('exit', () => rmSync(cacheDir, { recursive: true, force: true }));
  return createComponentRuntime({ cacheDir });
}
