/**
 * The `wasmlet` command. The only place (with the other CLI entries) that reads process.env.
 */
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import pino, { type Logger } from 'pino';
import { registerActorCommands } from '../actors-sdk/index.ts';
import { builtinProviders, ExtrasProvider, HttpClientProvider, HttpServerProvider, KeyValueProvider, LoggingProvider, MessagingProvider, natsBackend } from '../capabilities/index.ts';
import { createImagePuller, parseImageReference, registerKubeletCommand, registerPushCommand, registerSandboxCommand } from '../kube/index.ts';
import { registerLatticeCommands } from './cli/lattice-commands.ts';
import { registerCtlCommands } from './lattice/ctl-commands.ts';
import { EXTRAS, HTTP_CLIENT, HTTP_SERVER, KEY_VALUE, LOGGING, MESSAGING } from './contracts.ts';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { registerClaimsCommands } from './cli/claims-commands.ts';
import { registerLatticeAdminCommands } from './cli/lattice-admin-commands.ts';
import { loadActorRef } from './cli/actor-refs.ts';
import { isWasmletError } from './errors.ts';
import { loadManifest } from './manifest.ts';
import { runPlan } from './run-plan.ts';
import { integerArg } from './cli/args.ts';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

function makeLogger(level: string): Logger {
  return pino({ level, base: { pid: process.pid } });
}

function untilSignal(): Promise<string> {
  return new Promise((resolve) => {
    const on = (sig: string) => () => resolve(sig);
    process.once('SIGINT', on('SIGINT'));
    process.once('SIGTERM', on('SIGTERM'));
  });
}

const program = new Command('wasmlet')
  .description('Run signed WebAssembly actors with capability providers, on one machine, a NATS lattice, or as a Kubernetes node.')
  .version(pkg.version)
  .showHelpAfterError();

program
  .command('up')
  .description('run a host manifest (waSCC format as-is, or wasmlet/v1) until interrupted')
  .argument('<manifest>', 'path of the manifest (YAML or JSON)')
  .option('--workers <n>', 'worker threads that run actors', integerArg('--workers', 1))
  .option('--deadline-ms <n>', 'deadline of one invocation', integerArg('--deadline-ms', 1))
  .option('--max-instances <n>', 'instances per actor', integerArg('--max-instances', 1))
  .option('--log-level <level>', 'trace, debug, info, warn, error', process.env.WASMLET_LOG_LEVEL ?? 'info')
  .action(async (manifest: string, opts: { workers?: number; deadlineMs?: number; maxInstances?: number; logLevel: string }) => {
    const logger = makeLogger(opts.logLevel);
    const plan = await loadManifest(manifest);
    const overrides = {
      ...(opts.workers ? { workers: opts.workers } : {}),
      ...(opts.deadlineMs ? { deadlineMs: opts.deadlineMs } : {}),
      ...(opts.maxInstances ? { maxInstances: opts.maxInstances } : {}),
    };
    const host = await runPlan(plan, { logger, providers: builtinProviders, hostOverrides: overrides });
    const actors = host.actors().map((a) => (a.id === a.module ? `${a.name} (${a.id})` : `${a.name} instance ${a.id} (${a.module})`));
    logger.info({ manifest, format: plan.format, actors, links: host.links.list().length }, 'wasmlet is up');
    // Whatever the log level, say plainly that the host is serving (scripts wait for this line).
    process.stderr.write(`wasmlet is up: ${actors.length} actor(s), ${host.links.list().length} link(s); Ctrl-C to stop\n`);
    const sig = await untilSignal();
    logger.info({ signal: sig }, 'shutting down');
    await host.stop();
  });

const io = { stdout: (s: string) => void process.stdout.write(s), stderr: (s: string) => void process.stderr.write(s) };
registerClaimsCommands(program, io);
registerLatticeAdminCommands(program, io);
registerPushCommand(program, io);
registerKubeletCommand(program, { ...io, env: process.env });
registerSandboxCommand(program, { ...io, env: process.env });

const stop = new AbortController();
const untilStopped = () => untilSignal().then((sig) => (stop.abort(), sig));
registerCtlCommands(program, { ...io, env: process.env, signal: stop.signal });
process.once('SIGINT', () => stop.abort());
const puller = createImagePuller({ cacheDir: process.env.WASMLET_IMAGE_CACHE ?? join(homedir(), '.cache', 'wasmlet', 'images') });
registerLatticeCommands(program, { ...io, env: process.env, untilStopped }, {
  providers: {
    'http-server': { contract: HTTP_SERVER, make: (o) => new HttpServerProvider(o) },
    keyvalue: { contract: KEY_VALUE, make: (o, _l, nc) => new KeyValueProvider(o, { nats: natsBackend({ connection: nc }) }) },
    logging: { contract: LOGGING, make: () => new LoggingProvider() },
    messaging: { contract: MESSAGING, make: (o) => new MessagingProvider(o) },
    httpclient: { contract: HTTP_CLIENT, make: (o) => new HttpClientProvider(o) },
    extras: { contract: EXTRAS, make: () => new ExtrasProvider() },
  },
  manifestProviders: (nc) => ({ ...builtinProviders, [KEY_VALUE]: (o) => new KeyValueProvider(o, { nats: natsBackend({ connection: nc }) }) }),
  load: (ref, policy) => loadActorRef(ref, policy, { registryOf: (r) => parseImageReference(r).registry, pull: async (r) => (await puller.pull(r, { policy: 'IfNotPresent' })).bytes }),
  version: pkg.version,
});

registerActorCommands(program, io, process.env.WASMLET_KEYS_DIR ? { keysDir: process.env.WASMLET_KEYS_DIR } : {});

try {
  await program.parseAsync(process.argv);
} catch (err) {
  const msg = isWasmletError(err) ? `${err.message} [${err.code}]` : err instanceof Error ? err.message : String(err);
  process.stderr.write(`wasmlet: ${msg}\n`);
  process.exitCode = 1;
}
