/**
 * All benchmarks in one run, each path as a ratio to a baseline measured in the same run.
 * Usage: npm run bench [-- --duration 10 --connections 50 --only http|component|fair-share|lattice|messaging [--repeat 3] [--spinners 4]]
 */
import * as component from './component.ts';
import * as fairShare from './fair-share.ts';
import * as http from './http.ts';
import * as lattice from './lattice.ts';
import * as messaging from './messaging.ts';
import { loadOptionsFromArgs, table } from './lib.ts';

const opts = loadOptionsFromArgs(process.argv);
const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : undefined;
const print = (s: string) => process.stdout.write(s);
print(`wasmlet benchmarks: ${opts.connections} connections, ${opts.durationSec} s per path (after ${opts.warmupSec} s warm-up), pipelining ${opts.pipelining}\n`);

if (!only || only === 'http') {
  const { baseline, rows } = await http.run(opts);
  print(`\n## HTTP → waPC actors, in-process\n\n${table(baseline, rows, http.targets)}\n`);
}
if (!only || only === 'component') {
  print(`\n## TypeScript component actors\n\n${component.report(await component.run(opts))}\n`);
}
if (!only || only === 'fair-share') {
  print(`\n## Fair share: echo beside an actor that spins every call to its deadline\n\n${fairShare.report(await fairShare.run(opts, fairShare.spinnersFromArgs(process.argv)))}\n`);
}
if (!only || only === 'lattice') {
  print(`\n## The NATS lattice\n\n${lattice.report(await lattice.run(opts, lattice.latticeOptionsFromArgs(process.argv)))}\n`);
}
if (!only || only === 'messaging') {
  const mo = { ...messaging.messagingOptionsFromArgs(process.argv), durationSec: opts.durationSec, warmupSec: opts.warmupSec };
  print(`\n## Messaging: deliveries to a subscribed actor\n\n${messaging.report(await messaging.run(mo))}\n`);
}
