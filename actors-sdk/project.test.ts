import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { isActorBuildError } from './errors.ts';
import { loadProject, parseProjectConfig } from './project.ts';

describe('actor project config', () => {
  it('fills in defaults', () => {
    assert.deepEqual(parseProjectConfig({ name: 'hello' }), {
      name: 'hello',
      version: '0.1.0',
      revision: 0,
      capabilities: [],
      tags: [],
      entry: 'src/actor.ts',
      output: 'build/hello.wasm',
      typecheck: true,
    });
  });

  it('names every bad field', () => {
    assert.throws(
      () => parseProjectConfig({ name: 'Bad Name', capabilities: ['keyvalue'], revision: -1, extra: 1 }),
      (e) => isActorBuildError(e) && e.code === 'PROJECT_INVALID' && /name:/.test(e.message) && /capabilities\.0:/.test(e.message) && /revision:/.test(e.message) && /extra/.test(e.message),
    );
  });

  it('loads actor.json and says plainly when it is missing or not JSON', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wasmlet-project-'));
    await assert.rejects(loadProject(dir), (e) => isActorBuildError(e) && /no actor\.json/.test(e.message) && /wasmlet actor new/.test(e.message));
    writeFileSync(join(dir, 'actor.json'), '{ name: ');
    await assert.rejects(loadProject(dir), (e) => isActorBuildError(e) && /not valid JSON/.test(e.message));
    writeFileSync(join(dir, 'actor.json'), JSON.stringify({ name: 'ok', capabilities: ['wascc:keyvalue'], output: 'out/x.wasm' }));
    const p = await loadProject(dir);
    assert.equal(p.entryPath, join(dir, 'src', 'actor.ts'));
    assert.equal(p.outputPath, join(dir, 'out', 'x.wasm'));
    assert.deepEqual(p.config.capabilities, ['wascc:keyvalue']);
  });
});
