/**
 * `wasmlet actor new` and `wasmlet actor build` as an author uses them: scaffold, build with
 * progress, keys generated once and never printed, the scaffold's own test passing, and build
 * errors that name the problem and leave the last good component in place.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { registerActorCommands } from '../actors-sdk/index.ts';
import { readClaims } from '../host/index.ts';
import { buildTestActor, TEST_BUILD_CACHE } from './helpers/component-actors.ts';

function cli() {
  const out: string[] = [];
  const err: string[] = [];
  const program = new Command('wasmlet').exitOverride();
  program.configureOutput({ writeOut: (s) => out.push(s), writeErr: (s) => err.push(s) });
  registerActorCommands(program, { stdout: (s) => out.push(s), stderr: (s) => err.push(s) });
  const run = async (...args: string[]) => {
    out.length = 0;
    err.length = 0;
    try {
      await program.parseAsync(['node', 'wasmlet', ...args]);
      return { code: 0, stdout: out.join(''), stderr: err.join('') };
    } catch (e) {
      return { code: (e as { exitCode?: number }).exitCode ?? 1, stdout: out.join(''), stderr: err.join('') };
    }
  };
  return run;
}

describe('wasmlet actor new / build', () => {
  const root = mkdtempSync(join(tmpdir(), 'wasmlet-sdk-cli-'));
  const project = join(root, 'greeter');
  const keys = join(root, 'keys');

  before(async () => {
    const r = await cli()('actor', 'new', 'greeter', '--dir', project);
    assert.equal(r.code, 0, r.stderr);
    // Seed the project's build cache from the shared test cache so the run componentizes this source once.
    const seeded = await buildTestActor(project);
    mkdirSync(join(project, '.wasmlet', 'cache'), { recursive: true });
    copyFileSync(join(TEST_BUILD_CACHE, `${seeded.digest}.wasm`), join(project, '.wasmlet', 'cache', `${seeded.digest}.wasm`));
  });

  it('scaffolds source, config naming capabilities, a test, and refuses to overwrite', async () => {
    const files = ['actor.json', 'package.json', 'tsconfig.json', 'src/actor.ts', 'test/actor.test.ts', 'README.md', '.gitignore'];
    for (const f of files) assert.ok(existsSync(join(project, f)), f);
    assert.deepEqual(JSON.parse(readFileSync(join(project, 'actor.json'), 'utf8')).capabilities, ['wasmlet:httpserver', 'wasmlet:keyvalue', 'wasmlet:logging']);
    const before = readFileSync(join(project, 'src/actor.ts'), 'utf8');
    const again = await cli()('actor', 'new', 'greeter', '--dir', project);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /exists and is not empty: nothing was written \[SCAFFOLD_EXISTS\]/);
    assert.equal(readFileSync(join(project, 'src/actor.ts'), 'utf8'), before);
    const bad = await cli()('actor', 'new', 'Bad_Name', '--dir', join(root, 'bad'));
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /invalid actor name/);
    assert.equal(existsSync(join(root, 'bad')), false);
    const caps = join(root, 'only-http');
    assert.equal((await cli()('actor', 'new', 'only-http', '--dir', caps, '--caps', 'wasmlet:httpserver')).code, 0);
    assert.deepEqual(JSON.parse(readFileSync(join(caps, 'actor.json'), 'utf8')).capabilities, ['wasmlet:httpserver']);
  });

  it('builds a signed component with progress, generating keys once and never printing them', async () => {
    const first = await cli()('actor', 'build', project, '--keys-dir', keys);
    assert.equal(first.code, 0, first.stderr);
    for (const step of ['[1/4] type-check', '[2/4] bundle', '[3/4] componentize', '[4/4] sign']) assert.ok(first.stderr.includes(step), `${step} in:\n${first.stderr}`);
    const out = join(project, 'build', 'greeter.wasm');
    const claims = readClaims(readFileSync(out)).claims;
    assert.equal(claims.wascap.name, 'greeter');
    assert.deepEqual(claims.wascap.caps, ['wasmlet:httpserver', 'wasmlet:keyvalue', 'wasmlet:logging']);
    assert.equal(claims.wascap.ver, '0.1.0');
    assert.ok(first.stdout.includes(claims.sub) && first.stdout.includes(claims.iss), first.stdout);
    const keyFiles = readdirSync(keys).sort();
    assert.deepEqual(keyFiles, ['account.nk', 'greeter_module.nk']);
    for (const f of keyFiles) {
      assert.equal(statSync(join(keys, f)).mode & 0o777, 0o600);
      const seed = readFileSync(join(keys, f), 'utf8').trim();
      assert.ok(!first.stdout.includes(seed) && !first.stderr.includes(seed), `${f}'s seed is never printed`);
    }
    assert.match(first.stderr, /generated key file .*account\.nk/);

    const second = await cli()('actor', 'build', project, '--keys-dir', keys);
    assert.equal(second.code, 0, second.stderr);
    assert.doesNotMatch(second.stderr, /generated key file/);
    assert.match(second.stderr, /\[3\/4\] componentize: unchanged, reused from the build cache/);
    assert.equal(readClaims(readFileSync(out)).claims.sub, claims.sub, 'same identity on every build');
  });

  it("passes the scaffold's own test, which runs the built actor in a real host", () => {
    const tsx = fileURLToPath(import.meta.resolve('tsx'));
    // A child of a test run is told so through NODE_TEST_CONTEXT; this one is a run of its own.
    const env = { ...process.env };
    delete env.NODE_TEST_CONTEXT;
    const r = spawnSync(process.execPath, ['--import', tsx, '--test', 'test/actor.test.ts'], { cwd: project, env, encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /# pass 2/);
  });

  it('names build errors and keeps the last good component', async () => {
    const out = join(project, 'build', 'greeter.wasm');
    const good = readFileSync(out);
    const src = join(project, 'src', 'actor.ts');
    const original = readFileSync(src, 'utf8');
    try {
      writeFileSync(src, `${original}\nconst n: number = 'not a number';\nexport { n };\n`);
      const typeError = await cli()('actor', 'build', project, '--keys-dir', keys);
      assert.equal(typeError.code, 1);
      assert.match(typeError.stderr, /src\/actor\.ts\(\d+,\d+\): error TS2322.*\[TYPECHECK_FAILED\]/s);

      writeFileSync(src, `import { text } from '@wasmlet/actor';\nexport const handler = () => text('x');\n`);
      const noDefault = await cli()('actor', 'build', project, '--keys-dir', keys, '--no-typecheck');
      assert.equal(noDefault.code, 1);
      assert.match(noDefault.stderr, /has no default export.*\[NO_HANDLER\]/s);
      assert.match(noDefault.stderr, /\[1\/4\] type-check: skipped/);

      writeFileSync(src, 'export default (;\n');
      const syntax = await cli()('actor', 'build', project, '--keys-dir', keys, '--no-typecheck');
      assert.equal(syntax.code, 1);
      assert.match(syntax.stderr, /src\/actor\.ts:1:\d+: .*\[BUNDLE_FAILED\]/s);

      const noProject = await cli()('actor', 'build', root, '--keys-dir', keys);
      assert.equal(noProject.code, 1);
      assert.match(noProject.stderr, /no actor\.json in .*\[PROJECT_INVALID\]/);
      assert.deepEqual(readFileSync(out), good, 'the last good component is untouched');
    } finally {
      writeFileSync(src, original);
    }
  });
});
