/**
 * The HTTP server capability provider (`wasmlet:httpserver`; aliases `wascc:http_server`,
 * `wasmcloud:httpserver`). Each link starts one HTTP server for its actor on the link's `PORT`
 * (and optional `ADDRESS`); requests become `HandleRequest` invocations of that actor.
 */
import { HTTP_SERVER, sameContract } from '../../host/index.ts';
import type { CapabilityProvider, LinkDefinition, ProviderCall, ProviderContext } from '../../host/index.ts';
import { LinkError, OperationError } from '../errors.ts';
import { ActorServer } from './actor-server.ts';
import { parseHttpServerOptions, parseListenTarget } from './options.ts';
import type { HttpServerOptions, ListenTarget, ResolvedHttpServerOptions } from './options.ts';

const keyOf = (actor: string, linkName: string) => `${actor}\u0000${linkName}`;

export class HttpServerProvider implements CapabilityProvider {
  readonly contract = HTTP_SERVER;
  readonly name = 'http-server';
  private readonly options: ResolvedHttpServerOptions;
  private ctx: ProviderContext | undefined;
  private readonly servers = new Map<string, ActorServer>();
  /** Link changes run one at a time, so two changes for one actor never race for its port. */
  private queue: Promise<unknown> = Promise.resolve();

  /** Throws OptionsError when `options` are invalid. */
  constructor(options: HttpServerOptions = {}) {
    this.options = parseHttpServerOptions(options);
  }

  async start(ctx: ProviderContext): Promise<void> {
    this.ctx = ctx;
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /**
   * Start (or move) the actor's server. Rejects with LinkError for a missing or invalid `PORT`,
   * a bad `ADDRESS`, or a port that cannot be bound; then nothing new is kept and an existing
   * server for the link keeps running.
   */
  putLink(link: LinkDefinition): Promise<void> {
    return this.serial(async () => {
      const ctx = this.ctx;
      if (!ctx) throw new LinkError('HTTP server provider is not started');
      if (!sameContract(link.contract, HTTP_SERVER)) {
        throw new LinkError(`HTTP server provider cannot serve contract ${JSON.stringify(link.contract)}`);
      }
      const target = parseListenTarget(link.values ?? {}, this.options.address);
      const key = keyOf(link.actor, link.linkName);
      const current = this.servers.get(key);
      if (current && current.target.port === target.port && current.target.address === target.address) return;
      const next = new ActorServer(link.actor, link.linkName, target, ctx, this.options);
      try {
        await next.listen();
      } catch (err) {
        await next.close();
        throw listenError(err, target);
      }
      this.servers.set(key, next);
      if (current) await current.close();
    });
  }

  /** Stop the actor's server: stop accepting, let in-flight requests finish (up to `drainTimeoutMs`). */
  deleteLink(link: LinkDefinition): Promise<void> {
    return this.serial(async () => {
      const key = keyOf(link.actor, link.linkName);
      const current = this.servers.get(key);
      if (!current) return;
      this.servers.delete(key);
      await current.close();
    });
  }

  /** Actors make no calls to the HTTP server contract; it only calls them. */
  async handle(call: ProviderCall): Promise<Uint8Array> {
    throw new OperationError('UNKNOWN_OPERATION', `the HTTP server contract has no operation "${call.operation}" an actor can call`);
  }

  /** Where the actor's server listens, if it has one. */
  boundAddress(actor: string, linkName = 'default'): ListenTarget | undefined {
    return this.servers.get(keyOf(actor, linkName))?.boundAddress();
  }

  stop(): Promise<void> {
    return this.serial(async () => {
      const all = [...this.servers.values()];
      this.servers.clear();
      await Promise.all(all.map((s) => s.close()));
      this.ctx = undefined;
    });
  }
}

function listenError(err: unknown, target: ListenTarget): LinkError {
  const code = (err as { code?: unknown } | null)?.code;
  const where = `${target.address}:${target.port}`;
  switch (code) {
    case 'EADDRINUSE':
      return new LinkError(`HTTP server port ${target.port} is already in use (${where})`, { cause: err });
    case 'EACCES':
      return new LinkError(`HTTP server port ${target.port} needs privileges this host does not have (${where})`, { cause: err });
    case 'EADDRNOTAVAIL':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new LinkError(`HTTP server ADDRESS ${target.address} is not available on this host (port ${target.port})`, { cause: err });
    default:
      return new LinkError(`HTTP server could not listen on ${where} (port ${target.port}): ${(err as Error)?.message ?? String(err)}`, { cause: err });
  }
}
