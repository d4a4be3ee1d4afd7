/**
 * `wasmlet kubelet`: runs this machine as a Kubernetes node whose pods are actors and WASI
 * programs. A CLI entry: it may read the environment (KUBECONFIG, KUBERNETES_SERVICE_HOST, HOME),
 * handed in through `io.env`. Output goes through `io`; failures through commander's
 * `command.error`, so the entry decides how to exit and tests can use `exitOverride()`.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { hostname as machineName, homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import pino, { type Logger } from 'pino';
import { builtinProviders } from '../capabilities/index.ts';
import { Host, integerArg, isWasmletError } from '../host/index.ts';
import { NodeAgent } from './node-agent.ts';
import { createImagePuller } from './oci/puller.ts';
import type { NodeAgentOptionsInput } from './options.ts';

export interface KubeletCliIo {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  /** The process environment (KUBECONFIG, KUBERNETES_SERVICE_HOST, HOME). */
  env: Record<string, string | undefined>;
  /** Resolves when the node should stop (SIGINT/SIGTERM). Default: the process signals. */
  untilStop?: () => Promise<string>;
  /** Called once the node serves (tests use it). */
  onStarted?: (agent: NodeAgent) => void;
  /** Logger; default pino at `--log-level` on stderr. */
  logger?: Logger;
}

interface KubeletFlags {
  kubeconfig?: string;
  nodeName?: string;
  port: number;
  address?: string;
  podCidr?: string;
  bindAddress?: string;
  tlsCert?: string;
  tlsKey?: string;
  clientCa?: string;
  tokenFile?: string;
  tokenReview: boolean;
  allowLocalFiles?: boolean;
  allowHostPath?: true | string[];
  insecureRegistry?: string[];
  imageCache?: string;
  dataDir?: string;
  maxPods?: number;
  label?: string[];
  taint?: string[];
  issuer?: string[];
  workers?: number;
  deadlineMs?: number;
  logLevel: string;
}

const collect = (v: string, prev: string[] = []) => [...prev, v];

/** `--allow-host-path [prefix]`, repeatable: alone it allows any directory; with prefixes, only those. */
export function hostPathPrefix(v: string, prev: true | string[] | undefined): true | string[] {
  if (!isAbsolute(v)) throw new InvalidArgumentError(`--allow-host-path ${JSON.stringify(v)}: expected an absolute directory path`);
  if (prev === true) return true;
  return [...(prev ?? []), resolve(v)];
}

/** `key=value` labels. */
export function parseLabels(items: string[] = []): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of items) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new InvalidArgumentError(`--label ${JSON.stringify(item)}: expected key=value`);
    out[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return out;
}

/** `key[=value]:Effect` taints, as kubectl writes them. */
export function parseTaints(items: string[]): { key: string; value?: string; effect: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute' }[] {
  return items.map((item) => {
    const m = /^([^=:]+)(?:=([^:]*))?:(NoSchedule|PreferNoSchedule|NoExecute)$/.exec(item);
    if (!m) throw new InvalidArgumentError(`--taint ${JSON.stringify(item)}: expected key[=value]:NoSchedule|PreferNoSchedule|NoExecute`);
    return { key: m[1]!, ...(m[2] !== undefined ? { value: m[2] } : {}), effect: m[3] as 'NoSchedule' };
  });
}

/** The kubeconfig to use: --kubeconfig, else $KUBECONFIG (first entry), else in-cluster, else ~/.kube/config. */
export function chooseKubeconfig(flag: string | undefined, env: KubeletCliIo['env']): { kubeconfig?: string; inCluster?: boolean } {
  if (flag) return { kubeconfig: flag };
  const fromEnv = env.KUBECONFIG?.split(':').find(Boolean);
  if (fromEnv) return { kubeconfig: fromEnv };
  if (env.KUBERNETES_SERVICE_HOST && env.KUBERNETES_SERVICE_PORT) return { inCluster: true };
  const home = join(env.HOME ?? homedir(), '.kube', 'config');
  if (existsSync(home)) return { kubeconfig: home };
  throw new InvalidArgumentError('no kubeconfig: pass --kubeconfig, set KUBECONFIG, run in a cluster, or create ~/.kube/config');
}

function defaultNodeName(): string {
  return machineName().toLowerCase().replace(/[^a-z0-9.-]+/g, '-').replace(/^[-.]+|[-.]+$/g, '') || 'wasmlet';
}

function untilSignal(): Promise<string> {
  return new Promise((resolve) => {
    const on = (sig: string) => () => resolve(sig);
    process.once('SIGINT', on('SIGINT'));
    process.once('SIGTERM', on('SIGTERM'));
  });
}

async function readTokens(file: string): Promise<string[]> {
  return (await readFile(file, 'utf8'))
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
}

/** Adds `kubelet` to `program`. */
export function registerKubeletCommand(program: Command, io: KubeletCliIo): void {
  program
    .command('kubelet')
    .description('join a Kubernetes cluster as a node: pods become actors (waPC, components) and WASI programs')
    .option('--kubeconfig <file>', 'kubeconfig to use (default: $KUBECONFIG, in-cluster, then ~/.kube/config)')
    .option('--node-name <name>', 'name of the Node (default: this machine\'s hostname)')
    .option('--port <n>', 'kubelet HTTPS API port (logs); 0 picks a free one', integerArg('--port', 0), 10250)
    .option('--address <ip>', 'the node\'s address (InternalIP, pod IPs; default: first non-internal IPv4)')
    .option('--pod-cidr <cidr>', 'give each pod its own IP from this range, e.g. 127.10.0.0/24 (default: the Node\'s spec.podCIDR, else the node\'s address)')
    .option('--bind-address <ip>', 'address the kubelet API binds (default: --address)')
    .option('--tls-cert <file>', 'serving certificate (PEM) of the kubelet API (default: self-signed)')
    .option('--tls-key <file>', 'key of --tls-cert (PEM)')
    .option('--client-ca <file>', 'CA (PEM) whose client certificates may read logs: the API server\'s kubelet client CA')
    .option('--token-file <file>', 'bearer tokens that may read logs, one per line')
    .option('--no-token-review', 'do not check other bearer tokens with a TokenReview')
    .option('--allow-local-files', 'accept file:///… image references (reads this machine\'s disk)')
    .option('--allow-host-path [prefix]', 'allow hostPath volumes in WASI pods (off by default); with a directory, only under it (repeatable)', hostPathPrefix)
    .option('--insecure-registry <host>', 'a registry reachable over plain HTTP (repeatable; loopback always is)', collect)
    .option('--image-cache <dir>', 'image cache directory (default: <data-dir>/images)')
    .option('--data-dir <dir>', 'where pod volumes and the image cache live')
    .option('--max-pods <n>', 'pods this node accepts', integerArg('--max-pods', 1))
    .option('--label <key=value>', 'a node label (repeatable)', collect)
    .option('--taint <key=value:Effect>', 'a node taint (repeatable; replaces the default wasmlet.dev/arch taints)', collect)
    .option('--issuer <account>', 'accept only actors signed by this account (repeatable)', collect)
    .option('--workers <n>', 'worker threads that run actors', integerArg('--workers', 1))
    .option('--deadline-ms <n>', 'deadline of one invocation', integerArg('--deadline-ms', 1))
    .option('--log-level <level>', 'trace, debug, info, warn, error', 'info')
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .action(async (flags: KubeletFlags, cmd: Command) => {
      const fail = (err: unknown): never => cmd.error(`error: ${isWasmletError(err) ? `${err.message} [${err.code}]` : (err as Error).message}`, { exitCode: 1 });
      const logger = io.logger ?? pino({ level: flags.logLevel }, pino.destination(2));
      let host: Host | undefined;
      let agent: NodeAgent | undefined;
      try {
        const nodeName = flags.nodeName ?? defaultNodeName();
        const dataDir = flags.dataDir ?? join(io.env.HOME ?? homedir(), '.local', 'share', 'wasmlet', 'kubelet', nodeName);
        const options: NodeAgentOptionsInput = {
          nodeName,
          ...chooseKubeconfig(flags.kubeconfig, io.env),
          port: flags.port,
          ...(flags.address ? { address: flags.address } : {}),
          ...(flags.podCidr ? { podCidr: flags.podCidr } : {}),
          ...(flags.bindAddress ? { bindAddress: flags.bindAddress } : {}),
          ...(flags.tlsCert ? { tlsCert: await readFile(flags.tlsCert, 'utf8') } : {}),
          ...(flags.tlsKey ? { tlsKey: await readFile(flags.tlsKey, 'utf8') } : {}),
          ...(flags.clientCa ? { clientCa: await readFile(flags.clientCa, 'utf8') } : {}),
          tokens: flags.tokenFile ? await readTokens(flags.tokenFile) : [],
          tokenReview: flags.tokenReview,
          labels: parseLabels(flags.label),
          ...(flags.taint ? { taints: parseTaints(flags.taint) } : {}),
          ...(flags.maxPods ? { maxPods: flags.maxPods } : {}),
          ...(flags.allowHostPath ? { allowHostPath: flags.allowHostPath } : {}),
          dataDir,
        };
        host = await Host.start(
          { ...(flags.workers ? { workers: flags.workers } : {}), ...(flags.deadlineMs ? { deadlineMs: flags.deadlineMs } : {}), issuers: flags.issuer ?? [], labels: { 'wasmlet.dev/node': nodeName } },
          { logger },
        );
        for (const make of Object.values(builtinProviders)) await host.addProvider(make({}, logger));
        const puller = createImagePuller({ cacheDir: flags.imageCache ?? join(dataDir, 'images'), allowLocalFiles: flags.allowLocalFiles ?? false, insecureRegistries: flags.insecureRegistry ?? [], logger });
        agent = await NodeAgent.start(options, { host, puller, logger });
        io.stderr(`wasmlet kubelet is up: node ${agent.nodeName}, kubelet API on ${agent.options.bindAddress}:${agent.port}; Ctrl-C to stop\n`);
        io.onStarted?.(agent);
        const sig = await (io.untilStop ?? untilSignal)();
        logger.info({ signal: sig }, 'stopping the node');
      } catch (err) {
        await agent?.stop().catch(() => {});
        await host?.stop().catch(() => {});
        fail(err);
      }
      await agent?.stop();
      await host?.stop();
    });
}
