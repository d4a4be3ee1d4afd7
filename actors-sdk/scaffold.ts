/**
 * `wasmlet actor new NAME`: an actor project ready to build — actor.json naming its
 * capabilities, TypeScript source, a tsconfig.json that resolves `@wasmlet/actor` to this SDK,
 * a test that runs the built actor in a real host, a README and a .gitignore.
 */
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ActorBuildError } from './errors.ts';
import { isActorName, PROJECT_FILE } from './project.ts';

export interface ScaffoldOptions {
  /** Folder to create. Default `./<name>`. */
  dir?: string;
  /** Capabilities to claim. Default HTTP server, key-value and logging. */
  capabilities?: string[];
}

export interface ScaffoldResult {
  dir: string;
  files: string[];
}

const SDK_DIR = fileURLToPath(new URL('.', import.meta.url));

function posix(p: string): string {
  return p.split('\\').join('/');
}

function templates(name: string, dir: string, capabilities: string[]): Record<string, string> {
  const sdk = posix(relative(dir, SDK_DIR));
  return {
    [PROJECT_FILE]: `${JSON.stringify({ name, version: '0.1.0', capabilities, entry: 'src/actor.ts' }, null, 2)}\n`,
    'package.json': `${JSON.stringify(
      { name, version: '0.1.0', private: true, type: 'module', scripts: { build: 'wasmlet actor build .', test: 'node --import tsx --test test/*.test.ts' } },
      null,
      2,
    )}\n`,
    'tsconfig.json': `${JSON.stringify(
      {
        compilerOptions: {
          target: 'ES2022',
          module: 'ESNext',
          moduleResolution: 'Bundler',
          lib: ['ES2022', 'DOM'],
          types: [],
          strict: true,
          noEmit: true,
          allowImportingTsExtensions: true,
          verbatimModuleSyntax: true,
          skipLibCheck: true,
          paths: { '@wasmlet/actor': [`${sdk}/guest/index.ts`], '@wasmlet/actor/testing': [`${sdk}/testing.ts`] },
        },
        include: ['src'],
      },
      null,
      2,
    )}\n`,
    'src/actor.ts': `/**
 * ${name}: counts the requests for each path in the key-value store and logs each one.
 */
import { config, handler, json, keyvalue, log } from '@wasmlet/actor';

export default handler((req) => {
  const key = \`hits:\${req.path}\`;
  const hits = keyvalue.add(key, 1);
  if (!hits.ok) return json({ error: hits.error.message }, { status: 503 });
  log.info('request', { method: req.method, path: req.path, hits: hits.value });
  return json({ greeting: config.getOr('GREETING', 'Hello'), path: req.path, hits: hits.value });
});
`,
    'test/actor.test.ts': `/**
 * Builds the actor and runs it in a real wasmlet host (in-memory key-value and logging).
 * Run with: node --import tsx --test test/actor.test.ts
 */
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { startTestActor, type TestActor } from '@wasmlet/actor/testing';

let actor: TestActor;
before(async () => {
  actor = await startTestActor(new URL('..', import.meta.url), { config: { GREETING: 'Hi' } });
});
after(() => actor?.stop());

it('counts requests per path', async () => {
  assert.deepEqual((await actor.request('/a')).json(), { greeting: 'Hi', path: '/a', hits: 1 });
  assert.deepEqual((await actor.request('/a')).json(), { greeting: 'Hi', path: '/a', hits: 2 });
  assert.deepEqual((await actor.request('/b')).json(), { greeting: 'Hi', path: '/b', hits: 1 });
});

it('logs each request with its context', async () => {
  await actor.request('/logged');
  const lines = await actor.logs();
  assert.ok(lines.some((l) => l.msg.startsWith('request method=GET path=/logged')));
});
`,
    'README.md': `# ${name}

A wasmlet actor written in TypeScript.

- \`src/actor.ts\`: the actor; its default export is the HTTP handler.
- \`actor.json\`: name, version and the capabilities it claims.

Build (type-check, bundle, componentize, sign) with \`wasmlet actor build\`; the signed component
is written to \`build/${name}.wasm\`. Signing keys are kept in \`~/.wasmlet/keys\` and made on the first build.
Test with \`node --import tsx --test test/actor.test.ts\`.
`,
    '.gitignore': 'build/\n.wasmlet/\n',
  };
}

/** Writes a new actor project. Throws ActorBuildError when the name is invalid or the folder is not empty. */
export async function scaffoldActor(name: string, options: ScaffoldOptions = {}): Promise<ScaffoldResult> {
  if (!isActorName(name)) {
    throw new ActorBuildError('PROJECT_INVALID', `invalid actor name ${JSON.stringify(name)}: use lower-case letters, digits and "-", starting with a letter or digit`);
  }
  const dir = resolve(options.dir ?? name);
  let existing: string[] = [];
  try {
    existing = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (existing.length) throw new ActorBuildError('SCAFFOLD_EXISTS', `${dir} exists and is not empty: nothing was written`);
  const capabilities = options.capabilities ?? ['wasmlet:httpserver', 'wasmlet:keyvalue', 'wasmlet:logging'];
  const files = templates(name, dir, capabilities);
  for (const [file, text] of Object.entries(files)) {
    await mkdir(join(dir, file, '..'), { recursive: true });
    await writeFile(join(dir, file), text, { flag: 'wx' });
  }
  return { dir, files: Object.keys(files) };
}
