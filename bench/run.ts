/**
 * All benchmarks in one run, each path as a ratio to a baseline measured in the same run.
 * Usage: npm run bench [-- --duration 10 --connections 50 --only http]
 */
import { loadOptionsFromArgs, table } from './lib.ts';
import * as http from './http.ts';

const opts = loadOptionsFromArgs(process.argv);
const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : undefined;
process.stdout.write(`wasmlet benchmarks: ${opts.connections} connections, ${opts.durationSec} s per path (after ${opts.warmupSec} s warm-up), pipelining ${opts.pipelining}\n`);

if (!only || only === 'http') {
  const { baseline, rows } = await http.run(opts);
  process.stdout.write(`\n## HTTP → waPC actors, in-process\n\n${table(baseline, rows, http.targets)}\n`);
}
