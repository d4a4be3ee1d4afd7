/**
 * `wasmlet ctl …`: the lattice control CLI (get hosts|inventory|links|claims, start/stop actor,
 * link put|del, watch), plus the NATS connection flags that `wasmlet host` and `wasmlet
 * provider` share (`addNatsOptions` + `natsOptionsFromFlags`).
 *
 * Output goes through the injected `io`; failures through commander's `command.error`, so the
 * CLI entry decides how to exit and tests can use `exitOverride()`. Environment variables are
 * read by the CLI entry and handed in as `io.env` (NATS_URL, NATS_USER, NATS_PASSWORD,
 * NATS_TOKEN, NATS_NKEY, NATS_CREDS, WASMLET_LATTICE_CREDS, WASMLET_LATTICE); flags win over
 * them. Every `ctl` command needs a ctl member credential (`--lattice-creds`), or `--insecure`
 * for an open lattice (lattice-flags.ts).
 */
import { InvalidArgumentError, type Command } from 'commander';
import type { Logger } from 'pino';
import { pino } from 'pino';
import type { NatsConnection } from 'nats';
import { integerArg } from '../cli/args.ts';
import { isWasmletError } from '../errors.ts';
import { connectNats, parseNatsConnectionOptions, type NatsConnectionOptions, type NatsConnectionOptionsInput } from './connection.ts';
import { ControlClient, type CloudEvent } from './control.ts';
import { addLatticeOptions, latticeTrustFromFlags, type LatticeFlags } from './lattice-flags.ts';
import { latticeIdSchema } from './subjects.ts';

export interface CtlIo {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  /** Environment the CLI entry passes in (flags win over it). */
  env?: Readonly<Record<string, string | undefined>>;
  /** Ends `ctl watch` (the CLI entry wires SIGINT to it). */
  signal?: AbortSignal;
  logger?: Logger;
}

/** Flags added by `addNatsOptions`, as commander hands them over. */
export interface NatsFlags {
  nats?: string[];
  lattice?: string;
  natsUser?: string;
  natsPassword?: string;
  natsToken?: string;
  natsNkey?: string;
  natsCreds?: string;
  natsTlsCa?: string;
  natsTlsCert?: string;
  natsTlsKey?: string;
  natsName?: string;
  natsMaxReconnects?: number;
  natsReconnectWaitMs?: number;
  natsReconnectJitterMs?: number;
  natsTimeoutMs?: number;
}

const USER_SEED = /^SU[A-Z2-7]{56}$/;

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, ...value.split(',').map((s) => s.trim()).filter(Boolean)];
}

function latticeId(value: string): string {
  const r = latticeIdSchema.safeParse(value);
  if (!r.success) throw new InvalidArgumentError('a lattice id is 1–64 letters, digits, "-" or "_"');
  return value;
}

/** Adds the NATS connection flags (and `--lattice`) to `command`. */
export function addNatsOptions(command: Command, options: { lattice?: boolean } = {}): Command {
  command
    .option('--nats <url>', 'NATS server URL (repeatable or comma-separated; default NATS_URL, else nats://127.0.0.1:4222)', collect)
    .option('--nats-user <user>', 'NATS user (with --nats-password)')
    .option('--nats-password <password>', 'NATS password (prefer NATS_PASSWORD in the environment)')
    .option('--nats-token <token>', 'NATS auth token (prefer NATS_TOKEN in the environment)')
    .option('--nats-nkey <seed-or-file>', 'user nkey seed (SU…) or a file holding it')
    .option('--nats-creds <file>', 'NATS credentials file (user JWT + seed)')
    .option('--nats-tls-ca <file>', 'CA certificate to verify NATS servers with')
    .option('--nats-tls-cert <file>', 'client certificate (with --nats-tls-key)')
    .option('--nats-tls-key <file>', 'client certificate key')
    .option('--nats-name <name>', 'connection name shown by the server')
    .option('--nats-max-reconnects <n>', 'reconnect attempts per server, -1 = forever', integerArg('--nats-max-reconnects', -1))
    .option('--nats-reconnect-wait-ms <ms>', 'wait between reconnect attempts', integerArg('--nats-reconnect-wait-ms', 0))
    .option('--nats-reconnect-jitter-ms <ms>', 'random extra reconnect wait', integerArg('--nats-reconnect-jitter-ms', 0))
    .option('--nats-timeout-ms <ms>', 'deadline of one connection attempt', integerArg('--nats-timeout-ms', 1));
  if (options.lattice ?? true) command.option('--lattice <id>', 'lattice id (default WASMLET_LATTICE, else "default")', latticeId);
  return command;
}

/** The lattice id from flags, then env, then `default`. */
export function latticeFromFlags(flags: NatsFlags, env: Readonly<Record<string, string | undefined>> = {}): string {
  return flags.lattice ?? env.WASMLET_LATTICE ?? 'default';
}

/**
 * Connection options from flags (then env), validated. Throws OptionsError naming the problem
 * (never a secret).
 */
export function natsOptionsFromFlags(flags: NatsFlags, env: Readonly<Record<string, string | undefined>> = {}, defaults: { name?: string; credsFile?: string } = {}): NatsConnectionOptions {
  const servers = flags.nats?.length ? flags.nats : env.NATS_URL ? collect(env.NATS_URL) : ['nats://127.0.0.1:4222'];
  const input: NatsConnectionOptionsInput = { servers, name: flags.natsName ?? defaults.name ?? 'wasmlet' };
  const user = flags.natsUser ?? env.NATS_USER;
  const pass = flags.natsPassword ?? env.NATS_PASSWORD;
  // Flags of one kind override env of another: a flag given means "authenticate this way".
  const flagAuth = flags.natsUser !== undefined || flags.natsPassword !== undefined || flags.natsToken !== undefined || flags.natsNkey !== undefined || flags.natsCreds !== undefined;
  const pick = <T>(flag: T | undefined, fromEnv: T | undefined) => (flagAuth ? flag : (flag ?? fromEnv));
  const u = flagAuth ? flags.natsUser : user;
  const p = flagAuth ? flags.natsPassword : pass;
  if (u !== undefined) input.user = u;
  if (p !== undefined) input.pass = p;
  const token = pick(flags.natsToken, env.NATS_TOKEN);
  if (token !== undefined) input.token = token;
  const nkey = pick(flags.natsNkey, env.NATS_NKEY);
  if (nkey !== undefined) {
    if (USER_SEED.test(nkey.trim())) input.nkeySeed = nkey.trim();
    else input.nkeyFile = nkey;
  }
  const creds = pick(flags.natsCreds, env.NATS_CREDS);
  if (creds !== undefined) input.credsFile = creds;
  // A lattice member's credential is also a NATS user credential (for a server run with the
  // configuration `wasmlet lattice nats-config` writes): use it when no other way is given.
  else if (defaults.credsFile !== undefined && input.user === undefined && input.token === undefined && input.nkeySeed === undefined && input.nkeyFile === undefined) input.credsFile = defaults.credsFile;
  if (flags.natsTlsCa || flags.natsTlsCert || flags.natsTlsKey) {
    input.tls = {
      ...(flags.natsTlsCa ? { ca: flags.natsTlsCa } : {}),
      ...(flags.natsTlsCert ? { cert: flags.natsTlsCert } : {}),
      ...(flags.natsTlsKey ? { key: flags.natsTlsKey } : {}),
    };
  }
  const reconnect: { maxAttempts?: number; waitMs?: number; jitterMs?: number } = {};
  if (flags.natsMaxReconnects !== undefined) reconnect.maxAttempts = flags.natsMaxReconnects;
  if (flags.natsReconnectWaitMs !== undefined) reconnect.waitMs = flags.natsReconnectWaitMs;
  if (flags.natsReconnectJitterMs !== undefined) reconnect.jitterMs = flags.natsReconnectJitterMs;
  input.reconnect = reconnect;
  if (flags.natsTimeoutMs !== undefined) input.timeoutMs = flags.natsTimeoutMs;
  return parseNatsConnectionOptions(input);
}

function errorText(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return isWasmletError(err) ? `${msg} [${err.code}]` : msg;
}

function table(rows: string[][]): string {
  if (rows.length === 0) return '';
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return `${rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n')}\n`;
}

function duration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60}s`;
  return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
}

function keyValues(value: string, previous: Record<string, string> = {}): Record<string, string> {
  const i = value.indexOf('=');
  if (i <= 0) throw new InvalidArgumentError(`expected KEY=VALUE, got ${JSON.stringify(value)}`);
  return { ...previous, [value.slice(0, i)]: value.slice(i + 1) };
}

interface CtlFlags extends NatsFlags, LatticeFlags {
  json?: boolean;
  timeoutMs?: number;
  gatherMs?: number;
}

/** Adds `ctl …` to `program`. */
export function registerCtlCommands(program: Command, io: CtlIo): void {
  const output = { writeOut: io.stdout, writeErr: io.stderr };
  const env = io.env ?? {};
  const logger = io.logger ?? pino({ level: 'silent' });

  const ctl = program.command('ctl').description('control a NATS lattice: hosts, actors, links, claims, events');
  ctl.configureOutput(output);

  /** A leaf command with the shared flags; `run` gets a connected client, closed afterwards. */
  const leaf = (parent: Command, name: string, description: string) => {
    const c = parent.command(name).description(description);
    c.configureOutput(output);
    addNatsOptions(c);
    addLatticeOptions(c);
    c.option('--json', 'print JSON');
    c.option('--timeout-ms <ms>', 'deadline of a request one host answers (default 5000)', integerArg('--timeout-ms', 1));
    c.option('--gather-ms <ms>', 'how long answers from all hosts are gathered (default 1000)', integerArg('--gather-ms', 1));
    return c;
  };

  const withClient = async (cmd: Command, flags: CtlFlags, run: (client: ControlClient) => Promise<void>): Promise<void> => {
    let nc: NatsConnection | undefined;
    try {
      const { trust, credsFile } = await latticeTrustFromFlags(flags, env, 'ctl');
      const options = natsOptionsFromFlags(flags, env, { name: 'wasmlet-ctl', ...(credsFile ? { credsFile } : {}) });
      nc = await connectNats(options, logger);
      const client = new ControlClient(nc, trust, { ...(flags.timeoutMs ? { timeoutMs: flags.timeoutMs } : {}), ...(flags.gatherMs ? { gatherMs: flags.gatherMs } : {}) }, logger);
      await run(client);
    } catch (err) {
      await nc?.close().catch(() => undefined);
      nc = undefined;
      cmd.error(`error: ${errorText(err)}`, { exitCode: 1, code: isWasmletError(err) ? err.code : 'ctl.failed' });
    } finally {
      await nc?.close().catch(() => undefined);
    }
  };

  const json = (v: unknown) => io.stdout(`${JSON.stringify(v, null, 2)}\n`);

  // ---------------------------------------------------------------- get
  const get = ctl.command('get').description('show hosts, inventory, links or claims');
  get.configureOutput(output);

  leaf(get, 'hosts', 'hosts that answer on the lattice').action(async (flags: CtlFlags, cmd: Command) =>
    withClient(cmd, flags, async (client) => {
      const hosts = await client.getHosts();
      if (flags.json) return json(hosts);
      if (hosts.length === 0) return io.stdout(`no hosts on lattice ${client.lattice}\n`);
      io.stdout(table([
        ['HOST', 'UPTIME', 'ACTORS', 'PROVIDERS', 'VERSION', 'LABELS'],
        ...hosts.map((h) => [h.hostId, duration(h.uptimeMs), String(h.actors), String(h.providers), h.version, Object.entries(h.labels).map(([k, v]) => `${k}=${v}`).join(',')]),
      ]));
    }),
  );

  leaf(get, 'inventory', "every host's actors and providers, or one host's")
    .argument('[host]', 'a host id (N…)')
    .action(async (host: string | undefined, flags: CtlFlags, cmd: Command) =>
      withClient(cmd, flags, async (client) => {
        const inventories = await client.getInventory(host);
        if (flags.json) return json(inventories);
        // Instances (several running copies of one module) get a MODULE column naming it.
        const moduleOf = (a: { id: string; module?: unknown }) => (typeof a.module === 'string' ? a.module : a.id);
        const instances = inventories.some((inv) => inv.actors.some((a) => moduleOf(a) !== a.id));
        const rows = [['HOST', 'KIND', 'ID', 'NAME', ...(instances ? ['MODULE'] : []), 'STATE']];
        for (const inv of inventories) {
          for (const a of inv.actors) rows.push([inv.hostId, 'actor', a.id, a.name, ...(instances ? [moduleOf(a)] : []), a.state]);
          for (const p of inv.providers) rows.push([inv.hostId, 'provider', `${p.contract}/${p.linkName}`, p.name, ...(instances ? [''] : []), p.state]);
        }
        io.stdout(rows.length > 1 ? table(rows) : `nothing runs on lattice ${client.lattice}\n`);
      }),
    );

  leaf(get, 'links', 'links stored on the lattice').action(async (flags: CtlFlags, cmd: Command) =>
    withClient(cmd, flags, async (client) => {
      const links = await client.getLinks();
      if (flags.json) return json(links);
      if (links.length === 0) return io.stdout(`no links on lattice ${client.lattice}\n`);
      io.stdout(table([
        ['ACTOR', 'CONTRACT', 'LINK NAME', 'VALUES'],
        // Values may hold secrets (URLs with passwords): show their names only; --json shows all.
        ...links.map((l) => [l.actor, l.contract, l.linkName, Object.keys(l.values).sort().join(',')]),
      ]));
    }),
  );

  leaf(get, 'claims', 'claims of actors that ran on the lattice').action(async (flags: CtlFlags, cmd: Command) =>
    withClient(cmd, flags, async (client) => {
      const claims = await client.getClaims();
      if (flags.json) return json(claims);
      if (claims.length === 0) return io.stdout(`no claims on lattice ${client.lattice}\n`);
      io.stdout(table([
        ['ACTOR', 'NAME', 'ISSUER', 'CAPS'],
        ...claims.map((c) => [c.sub, c.wascap.name ?? '', c.iss, (c.wascap.caps ?? []).join(',')]),
      ]));
    }),
  );

  // ---------------------------------------------------------------- start / stop
  const start = ctl.command('start').description('start something on the lattice');
  start.configureOutput(output);
  leaf(start, 'actor', 'start an actor on one host (any host unless --host)')
    .argument('<ref>', 'what to start: a path on the host or an OCI reference')
    .option('--host <id>', 'the host to start it on')
    .option('--config <key=value>', 'actor configuration (repeatable)', keyValues)
    .option('--max-instances <n>', 'instances of this actor', integerArg('--max-instances', 1))
    .option('--max-concurrency <n>', 'calls of this actor that run at once (default: the host\'s workers less one)', integerArg('--max-concurrency', 1))
    .option('--max-memory-mib <n>', 'linear memory of one instance, MiB (default: the host\'s, 64)', integerArg('--max-memory-mib', 1))
    .option('--deadline-ms <ms>', 'deadline of one invocation', integerArg('--deadline-ms', 1))
    .action(async (ref: string, flags: CtlFlags & { host?: string; config?: Record<string, string>; maxInstances?: number; maxConcurrency?: number; maxMemoryMib?: number; deadlineMs?: number }, cmd: Command) =>
      withClient(cmd, flags, async (client) => {
        const r = await client.startActor(
          {
            ref,
            ...(flags.config ? { config: flags.config } : {}),
            ...(flags.maxInstances ? { maxInstances: flags.maxInstances } : {}),
            ...(flags.maxConcurrency ? { maxConcurrency: flags.maxConcurrency } : {}),
            ...(flags.maxMemoryMib ? { maxMemoryMiB: flags.maxMemoryMib } : {}),
            ...(flags.deadlineMs ? { deadlineMs: flags.deadlineMs } : {}),
          },
          flags.host,
        );
        if (flags.json) return json(r);
        io.stdout(`started ${r.actor.name || ref} (${r.actor.id}) on host ${r.hostId}\n`);
      }),
    );

  const stop = ctl.command('stop').description('stop something on the lattice');
  stop.configureOutput(output);
  leaf(stop, 'actor', 'stop an actor on every host running it (or on --host)')
    .argument('<actor>', "the actor's module key (M…)")
    .option('--host <id>', 'only on this host')
    .action(async (actor: string, flags: CtlFlags & { host?: string }, cmd: Command) =>
      withClient(cmd, flags, async (client) => {
        const hosts = await client.stopActor(actor, flags.host);
        if (flags.json) return json({ actor, hosts });
        if (hosts.length === 0) throw new Error(`actor ${actor} runs on no host of lattice ${client.lattice}`);
        io.stdout(`stopped ${actor} on ${hosts.length === 1 ? `host ${hosts[0]}` : `${hosts.length} hosts: ${hosts.join(', ')}`}\n`);
      }),
    );

  // ---------------------------------------------------------------- link
  const link = ctl.command('link').description('put or delete links');
  link.configureOutput(output);
  leaf(link, 'put', 'link an actor to a contract (values configure the provider)')
    .argument('<actor>', "the actor's module key (M…)")
    .argument('<contract>', 'contract id, e.g. wasmlet:keyvalue or wascc:http_server')
    .option('--link-name <name>', 'link name (default "default")')
    .option('--provider <id>', 'the provider that serves it, when not on the calling host')
    .option('--value <key=value>', 'a link value (repeatable)', keyValues)
    .action(async (actor: string, contract: string, flags: CtlFlags & { linkName?: string; provider?: string; value?: Record<string, string> }, cmd: Command) =>
      withClient(cmd, flags, async (client) => {
        const r = await client.putLink({
          actor,
          contract,
          ...(flags.linkName ? { linkName: flags.linkName } : {}),
          ...(flags.provider ? { provider: flags.provider } : {}),
          values: flags.value ?? {},
        });
        if (flags.json) return json(r);
        const where = r.via === 'host' ? `by host ${r.hostId}` : 'in the lattice store (no host answered; hosts pick it up when they join)';
        io.stdout(`link put: ${r.link.actor} → ${r.link.contract} (${r.link.linkName}) ${where}\n`);
      }),
    );

  leaf(link, 'del', 'delete a link')
    .argument('<actor>', "the actor's module key (M…)")
    .argument('<contract>', 'contract id')
    .option('--link-name <name>', 'link name (default "default")')
    .action(async (actor: string, contract: string, flags: CtlFlags & { linkName?: string }, cmd: Command) =>
      withClient(cmd, flags, async (client) => {
        const r = await client.deleteLink(actor, contract, flags.linkName);
        if (flags.json) return json(r);
        if (!r.deleted) throw new Error(`no link ${actor} → ${contract} (${flags.linkName ?? 'default'}) on lattice ${client.lattice}`);
        io.stdout(`link deleted: ${actor} → ${contract} (${flags.linkName ?? 'default'})\n`);
      }),
    );

  // ---------------------------------------------------------------- watch
  leaf(ctl, 'watch', 'print lattice events (CloudEvents) as they happen, until interrupted')
    .option('--type <name>', 'only this event type, e.g. actor_started (repeatable)', collect)
    .option('--count <n>', 'exit after this many events', integerArg('--count', 1))
    .action(async (flags: CtlFlags & { type?: string[]; count?: number }, cmd: Command) =>
      withClient(cmd, flags, async (client) => {
        const stream = client.watch({ ...(flags.type ? { types: flags.type } : {}), ...(io.signal ? { signal: io.signal } : {}) });
        await client.flush();
        io.stderr(`watching lattice ${client.lattice}\n`);
        let seen = 0;
        for await (const e of stream) {
          io.stdout(flags.json ? `${JSON.stringify(e)}\n` : renderEvent(e));
          if (flags.count && ++seen >= flags.count) break;
        }
      }),
    );
}

function renderEvent(e: CloudEvent): string {
  const type = e.type.startsWith('dev.wasmlet.') ? e.type.slice('dev.wasmlet.'.length) : e.type;
  const d = (e.data ?? {}) as Record<string, unknown>;
  const detail: string[] = [];
  const actor = d.actor as { id?: string; name?: string } | string | undefined;
  if (typeof actor === 'string') detail.push(`actor=${actor}`);
  else if (actor?.id) detail.push(`actor=${actor.id}${actor.name ? ` (${actor.name})` : ''}`);
  const link = d.link as { actor?: string; contract?: string; linkName?: string } | undefined;
  if (link?.actor) detail.push(`link=${link.actor}→${link.contract}/${link.linkName}`);
  if (typeof d.error === 'string') detail.push(`error=${JSON.stringify(d.error)}`);
  if (typeof d.actors === 'number') detail.push(`actors=${d.actors} providers=${String(d.providers)}`);
  return `${e.time}  ${type.padEnd(18)} host=${e.wasmlethost ?? e.source}${detail.length ? `  ${detail.join(' ')}` : ''}\n`;
}

export type { NatsConnectionOptions };
