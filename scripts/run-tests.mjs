#!/usr/bin/env node
// Runs every unit test (`*.test.ts` beside the code) and integration test (`test/**/*.test.ts`)
// with Node's own test runner, loading TypeScript through tsx.
// Usage: node scripts/run-tests.mjs [path-substring ...]
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const roots = ['host', 'capabilities', 'actors-sdk', 'kube', 'test', 'demos', 'bench'];
const skip = new Set(['node_modules', '.cache', '.git']);

function walk(dir, out) {
  let entries;
  try { entries = readdirSync(dir); } catch { return out; }
  for (const name of entries) {
    if (skip.has(name)) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith('.test.ts')) out.push(relative(root, p));
  }
  return out;
}

const filters = process.argv.slice(2);
let files = roots.flatMap((r) => walk(join(root, r), [])).sort();
if (filters.length) files = files.filter((f) => filters.some((s) => f.includes(s)));
if (!files.length) {
  process.stderr.write('no test files matched\n');
  process.exit(1);
}
const concurrency = process.env.WASMLET_TEST_CONCURRENCY ?? '2';
const child = spawn(
  process.execPath,
  ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, '--test-timeout=120000', ...files],
  { cwd: root, stdio: 'inherit' },
);
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
