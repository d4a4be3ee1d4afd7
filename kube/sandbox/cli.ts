/**
 * `wasmlet sandbox`: starts the sandbox (sandbox.ts), writes its kubeconfig and prints the line
 * that points kubectl at it, then runs until interrupted. A CLI entry: the environment comes in
 * through `io.env`; output goes through `io`.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import pino, { type Logger } from 'pino';
import { integerArg, isWasmletError } from '../../host/index.ts';
import { startSandbox, type Sandbox } from './sandbox.ts';

export interface SandboxCliIo {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  env: Record<string, string | undefined>;
  /** Resolves when the sandbox should stop. Default: SIGINT/SIGTERM. */
  untilStop?: () => Promise<string>;
  /** Called once the sandbox serves (tests use it). */
  onStarted?: (sandbox: Sandbox) => void;
  logger?: Logger;
}

interface SandboxFlags {
  dataDir?: string;
  nodeName: string;
  podCidr: string;
  registryPort: number;
  apiPort: number;
  build: boolean;
  workers?: number;
  logLevel: string;
}

function untilSignal(): Promise<string> {
  return new Promise((resolve) => {
    const on = (sig: string) => () => resolve(sig);
    process.once('SIGINT', on('SIGINT'));
    process.once('SIGTERM', on('SIGTERM'));
  });
}

/** Adds `sandbox` to `program`. */
export function registerSandboxCommand(program: Command, io: SandboxCliIo): void {
  program
    .command('sandbox')
    .description('start a single-node Kubernetes API sandbox on loopback with a wasmlet node joined to it (for trying wasmlet and for tests; not a Kubernetes)')
    .option('--data-dir <dir>', 'where its kubeconfig, image cache and volumes go (default: ~/.local/share/wasmlet/sandbox)')
    .option('--node-name <name>', 'the node\'s name', 'wasmlet-sandbox')
    .option('--pod-cidr <cidr>', 'pods\' addresses (a loopback range needs no setup)', '127.10.0.0/24')
    .option('--registry-port <n>', 'port of its OCI registry on 127.0.0.1 (the demos name 5000; a taken port falls back to a free one)', integerArg('--registry-port', 0), 5000)
    .option('--api-port <n>', 'HTTPS port of its API server on 127.0.0.1 (0: a free one)', integerArg('--api-port', 0), 0)
    .option('--no-build', 'do not build the TypeScript demos (hello, kv-counter, logger)')
    .option('--workers <n>', 'worker threads that run actors', integerArg('--workers', 1))
    .option('--log-level <level>', 'trace, debug, info, warn, error', 'warn')
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .action(async (flags: SandboxFlags, cmd: Command) => {
      const logger = io.logger ?? pino({ level: flags.logLevel }, pino.destination(2));
      let sandbox: Sandbox;
      try {
        sandbox = await startSandbox({
          dataDir: flags.dataDir ?? join(io.env.HOME ?? homedir(), '.local', 'share', 'wasmlet', 'sandbox'),
          nodeName: flags.nodeName,
          podCidr: flags.podCidr,
          registryPort: flags.registryPort,
          apiPort: flags.apiPort,
          buildDemos: flags.build,
          ...(flags.workers ? { workers: flags.workers } : {}),
          logger,
        });
      } catch (err) {
        return cmd.error(`error: ${isWasmletError(err) ? `${err.message} [${err.code}]` : (err as Error).message}`, { exitCode: 1 });
      }
      io.stdout(
        [
          `wasmlet sandbox is up: API server ${sandbox.api.server}, node ${sandbox.agent.nodeName} (pods in ${sandbox.agent.podCidr}), registry ${sandbox.registry}`,
          'It is for trying wasmlet and for tests, not a Kubernetes: one node, no kube-proxy, no DNS, nothing kept after it stops.',
          flags.build ? 'The TypeScript demos (hello, kv-counter, logger) are being built and pushed (about 15 s each the first time).' : '',
          'Point kubectl at it:',
          '',
          `export KUBECONFIG=${sandbox.kubeconfigPath}`,
          '',
        ]
          .filter((l, i) => l !== '' || i > 2)
          .join('\n'),
      );
      io.onStarted?.(sandbox);
      void sandbox.demosBuilt.then((built) => {
        if (built.length) logger.info({ demos: built }, 'TypeScript demos are in the sandbox registry');
      });
      const sig = await (io.untilStop ?? untilSignal)();
      logger.info({ signal: sig }, 'stopping the sandbox');
      await sandbox.stop();
    });
}
