import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { componentGuestFactory } from './component-guest.ts';

type Loaded = { instantiate: (getCoreModule: unknown, imports: unknown) => Record<string, unknown> };

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Writes a glue file and loads it the way a worker does. */
async function loadGlue(source: string): Promise<Loaded> {
  const dir = mkdtempSync(join(tmpdir(), 'wasmlet-glue-'));
  dirs.push(dir);
  writeFileSync(join(dir, 'package.json'), '{"type":"module"}\n');
  const file = join(dir, 'component.js');
  writeFileSync(file, source);
  return (await componentGuestFactory.load!({ glueUrl: pathToFileURL(file).href, modules: {}, digest: 'D' })) as Loaded;
}

// `arguments` exists in a function body and not at a module's top level: it tells how the glue was loaded.
const HOW = "const how = typeof arguments === 'undefined' ? 'module' : 'function';\n";

describe('component glue loading', () => {
  it('compiles jco-shaped glue as a strict function, without the module loader', async () => {
    const glue = await loadGlue(`${HOW}let strict = (function () { return this === undefined; })();\nexport function instantiate(getCoreModule, imports) {\n  return { how, strict, imports };\n}\n`);
    assert.deepEqual(glue.instantiate(null, 'i'), { how: 'function', strict: true, imports: 'i' });
  });

  it('imports glue of any other shape as the ES module it is', async () => {
    const meta = await loadGlue(`${HOW}const url = import.meta.url;\nexport function instantiate() {\n  return { how, file: url.endsWith('component.js') };\n}\n`);
    assert.deepEqual(meta.instantiate(null, null), { how: 'module', file: true });
    const twoExports = await loadGlue(`${HOW}export const x = 1;\nexport function instantiate() {\n  return { how };\n}\n`);
    assert.deepEqual(twoExports.instantiate(null, null), { how: 'module' });
  });

  it('fails to load glue without an instantiate export, naming it', async () => {
    await assert.rejects(loadGlue('export function other() {}\n'), /has no instantiate export/);
    await assert.rejects(loadGlue('export function instantiate( {\n'), SyntaxError);
  });
});
