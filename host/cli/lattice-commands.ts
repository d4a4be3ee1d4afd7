/**
 * `wasmlet host` and `wasmlet provider`: processes that join a NATS lattice. A host runs actors
 * (and, from a manifest, providers); a provider process runs one provider and no actors. Both
 * answer the control interface (`wasmlet ctl`).
 */
import { readFile } from 'node:fs/promises';
import { Command, InvalidArgumentError } from 'commander';
import type { NatsConnection } from 'nats';
import pino, { type Logger } from 'pino';
import { isPublicKey, seedKind } from '../claims/keys.ts';
import { Host } from '../host.ts';
import { connectNats } from '../lattice/connection.ts';
import { ControlServer } from '../lattice/control.ts';
import { addNatsOptions, natsOptionsFromFlags, type NatsFlags } from '../lattice/ctl-commands.ts';
import { hostControl } from '../lattice/host-control.ts';
import { addLatticeOptions, latticeTrustFromFlags, type LatticeFlags } from '../lattice/lattice-flags.ts';
import type { LatticeTrust, MemberRole } from '../lattice/membership.ts';
import { NatsBus } from '../lattice/nats-bus.ts';
import { NatsClaimsStore } from '../lattice/nats-claims-store.ts';
import { NatsLinkStore } from '../lattice/nats-link-store.ts';
import { loadManifest } from '../manifest.ts';
import { runPlan, type ProviderFactory } from '../run-plan.ts';
import type { CapabilityProvider } from '../types.ts';
import type { ActorRefPolicy } from './actor-refs.ts';
import { integerArg } from './args.ts';

export interface LatticeCliIo {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  env: Readonly<Record<string, string | undefined>>;
  /** Resolves when the process should stop (SIGINT/SIGTERM). */
  untilStopped(): Promise<string>;
}

export interface LatticeCliDeps {
  /** Providers `wasmlet provider NAME` can run, by name; `nc` is the lattice connection. */
  providers: Record<string, { contract: string; make(options: Record<string, unknown>, logger: Logger, nc: NatsConnection): CapabilityProvider }>;
  /** Built-in providers for manifests run by `wasmlet host --manifest`, by canonical contract. */
  manifestProviders(nc: NatsConnection): Record<string, ProviderFactory>;
  /** Reads what `ctl start actor REF` names (a file under `policy.localFiles`, or an OCI reference from an allowed registry). */
  load(ref: string, policy: ActorRefPolicy): Promise<Uint8Array>;
  /** Shown by `ctl get hosts`. */
  version: string;
}


interface JoinFlags extends NatsFlags, LatticeFlags {
  hostSeed?: string;
  allowedHost?: string[];
  logLevel: string;
  heartbeatMs?: number;
}

const collect = (v: string, prev: string[] = []) => [...prev, v];

async function hostSeed(flag: string | undefined): Promise<string | undefined> {
  if (!flag) return undefined;
  const text = flag.startsWith('S') ? flag : (await readFile(flag, 'utf8')).trim();
  if (seedKind(text) !== 'server') throw new InvalidArgumentError('--host-seed must be a server seed (SN…) or a file holding one');
  return text;
}

function commonOptions(cmd: Command): Command {
  addNatsOptions(cmd);
  addLatticeOptions(cmd);
  return cmd
    .option('--host-seed <seed-or-file>', 'with --insecure only: server nkey seed (SN…) for the host id (default: a fresh key)')
    .option('--allowed-host <N…>', 'accept lattice calls only from these members (host ids, repeatable), on top of the credential checks', collect)
    .option('--heartbeat-ms <ms>', 'host heartbeat interval', integerArg('--heartbeat-ms', 0))
    .option('--log-level <level>', 'trace, debug, info, warn, error', 'info');
}

interface Joined {
  nc: NatsConnection;
  trust: LatticeTrust;
  bus: NatsBus;
  links: NatsLinkStore;
  claims: NatsClaimsStore;
  lattice: string;
  logger: Logger;
}

async function join(flags: JoinFlags, io: LatticeCliIo, name: string, role: MemberRole): Promise<Joined> {
  const logger = pino({ level: flags.logLevel });
  for (const k of flags.allowedHost ?? []) if (!isPublicKey(k, 'server')) throw new InvalidArgumentError(`--allowed-host ${k} is not a server public key (N…)`);
  const { trust, credsFile } = await latticeTrustFromFlags(flags, io.env, role);
  const seed = await hostSeed(flags.hostSeed);
  if (seed !== undefined && !trust.insecure) throw new InvalidArgumentError('--host-seed is for open lattices (--insecure): a member signs with the key of its credential');
  if (trust.insecure) {
    logger.warn({ lattice: trust.lattice }, 'joining an OPEN lattice (--insecure): any NATS client can invoke actors, answer calls and send control requests');
    io.stderr(`wasmlet: warning: lattice ${trust.lattice} is OPEN (--insecure): nothing on it is authenticated; use it for development only\n`);
  }
  const nc = await connectNats(natsOptionsFromFlags(flags, io.env, { name, ...(credsFile ? { credsFile } : {}) }), logger);
  const bus = new NatsBus(nc, trust, { ...(seed ? { hostSeed: seed } : {}), allowedHosts: flags.allowedHost ?? [] }, logger);
  const links = await NatsLinkStore.open(nc, trust, {}, logger);
  const claims = await NatsClaimsStore.open(nc, trust, {}, logger);
  return { nc, trust, bus, links, claims, lattice: trust.lattice, logger };
}

async function serveUntilStopped(j: Joined, host: Host, io: LatticeCliIo, deps: LatticeCliDeps, flags: JoinFlags, what: string, policy: ActorRefPolicy): Promise<void> {
  const ctl = new ControlServer(
    j.nc,
    j.trust,
    hostControl(host, { load: (ref) => deps.load(ref, policy) }),
    { version: deps.version, acceptsLinks: what === 'host', ...(flags.heartbeatMs !== undefined ? { heartbeatIntervalMs: flags.heartbeatMs } : {}) },
    j.logger,
  );
  await ctl.start();
  io.stderr(`wasmlet ${what} is up: host ${host.id} on lattice ${j.lattice}${j.trust.insecure ? ' (OPEN: --insecure)' : ''}; Ctrl-C to stop\n`);
  const sig = await io.untilStopped();
  j.logger.info({ signal: sig }, 'shutting down');
  await ctl.stop();
  await host.stop();
  await j.bus.close();
  await j.links.close();
  await j.claims.close();
  // Drain when connected; either way close, or reconnect attempts would keep the process alive.
  await Promise.race([j.nc.drain().catch(() => {}), new Promise((r) => setTimeout(r, 2000).unref())]);
  await j.nc.close().catch(() => {});
}

export function registerLatticeCommands(program: Command, io: LatticeCliIo, deps: LatticeCliDeps): void {
  commonOptions(
    program
      .command('host')
      .description('join a NATS lattice as a host that runs actors (start them with --manifest or `wasmlet ctl start actor`)')
      .option('--manifest <file>', 'a manifest to run on this host (actors, links, and in-process providers)')
      .option('--workers <n>', 'worker threads that run actors', integerArg('--workers', 1))
      .option('--deadline-ms <n>', 'deadline of one invocation', integerArg('--deadline-ms', 1))
      .option('--allow-local-files <dir>', '`ctl start actor` may name actor files under this directory (default: none, OCI references only)')
      .option('--allowed-registry <host>', '`ctl start actor` may pull only from these registries (repeatable; default: any)', collect)
      .option('--max-actor-mib <n>', 'largest actor `ctl start actor` accepts, MiB (default 64)', integerArg('--max-actor-mib', 1)),
  ).action(async (flags: JoinFlags & { manifest?: string; workers?: number; deadlineMs?: number; allowLocalFiles?: string; allowedRegistry?: string[]; maxActorMib?: number }) => {
    const policy: ActorRefPolicy = { localFiles: flags.allowLocalFiles, registries: flags.allowedRegistry ?? [], maxBytes: (flags.maxActorMib ?? 64) * 1024 * 1024 };
    const j = await join(flags, io, 'wasmlet-host', 'host');
    const overrides = {
      lattice: j.lattice,
      hostId: j.bus.hostId,
      ...(flags.workers ? { workers: flags.workers } : {}),
      ...(flags.deadlineMs ? { deadlineMs: flags.deadlineMs } : {}),
    };
    const host = flags.manifest
      ? await runPlan(await loadManifest(flags.manifest), { logger: j.logger, providers: deps.manifestProviders(j.nc), hostOverrides: overrides, deps: { bus: j.bus, links: j.links, claims: j.claims } })
      : await Host.start(overrides, { logger: j.logger, bus: j.bus, links: j.links, claims: j.claims });
    await serveUntilStopped(j, host, io, deps, flags, 'host', policy);
  });

  commonOptions(
    program
      .command('provider')
      .description(`run one capability provider on a NATS lattice (${Object.keys(deps.providers).join(', ')})`)
      .argument('<name>', Object.keys(deps.providers).join(' | '))
      .option('--link-name <name>', 'link name this provider serves', 'default')
      .option('--options <json>', 'provider options as JSON (e.g. {"maxBodyBytes":65536})', '{}'),
  ).action(async (name: string, flags: JoinFlags & { linkName: string; options: string }) => {
    const spec = deps.providers[name];
    if (!spec) throw new InvalidArgumentError(`no provider named ${name}; choose one of: ${Object.keys(deps.providers).join(', ')}`);
    let options: Record<string, unknown>;
    try {
      options = JSON.parse(flags.options) as Record<string, unknown>;
    } catch (err) {
      throw new InvalidArgumentError(`--options is not valid JSON: ${(err as Error).message}`);
    }
    const j = await join(flags, io, `wasmlet-provider-${name}`, 'provider');
    const host = await Host.start({ workers: 0, lattice: j.lattice, hostId: j.bus.hostId, labels: { provider: name } }, { logger: j.logger, bus: j.bus, links: j.links, claims: j.claims });
    await host.addProvider(spec.make(options, j.logger, j.nc), { linkName: flags.linkName });
    await serveUntilStopped(j, host, io, deps, flags, `provider ${name}`, { localFiles: undefined, registries: [], maxBytes: 0 });
  });
}
