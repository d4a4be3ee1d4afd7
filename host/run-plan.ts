/**
 * Runs a HostPlan (from a manifest): starts the host, one built-in provider per contract and
 * link name the plan uses, the actors, then the links.
 */
import type { Logger } from 'pino';
import { ManifestError } from './errors.ts';
import { readActorFile } from './fs-util.ts';
import { Host, type HostDeps } from './host.ts';
import type { HostPlan } from './manifest.ts';
import type { HostOptionsInput } from './options.ts';
import type { CapabilityProvider } from './types.ts';

/** Makes a provider for a contract from the plan's provider options. */
export type ProviderFactory = (options: Record<string, unknown>, logger: Logger) => CapabilityProvider;

export interface RunPlanOptions {
  logger: Logger;
  /** Built-in providers by canonical contract id. */
  providers: Record<string, ProviderFactory>;
  /** Host options that override the plan's (e.g. from CLI flags). */
  hostOverrides?: HostOptionsInput;
  deps?: Omit<HostDeps, 'logger'>;
}

export async function runPlan(plan: HostPlan, options: RunPlanOptions): Promise<Host> {
  const { logger } = options;
  // Check everything that can be checked before starting anything.
  for (const p of plan.providers) {
    if (!options.providers[p.contract]) {
      const known = Object.keys(options.providers).join(', ');
      throw new ManifestError(`no provider for contract ${p.contract}${p.nativePath ? ` (native provider ${p.nativePath} cannot be loaded by wasmlet)` : ''}; wasmlet has built-in providers for: ${known}`);
    }
  }
  const actorBytes = await Promise.all(
    plan.actors.map(async (a) => {
      try {
        return await readActorFile(a.path);
      } catch (err) {
        throw new ManifestError(`cannot load actor ${a.path}: ${(err as Error).message}`, { cause: err });
      }
    }),
  );

  const host = await Host.start({ ...plan.host, ...options.hostOverrides } as HostOptionsInput, { logger, ...options.deps });
  try {
    for (const p of plan.providers) {
      const provider = options.providers[p.contract]!(p.options, logger);
      if (p.nativePath) {
        logger.info({ contract: p.contract, native: p.nativePath, provider: provider.name }, `native provider ${p.nativePath} cannot be loaded; serving ${p.contract} with wasmlet's built-in ${provider.name} provider`);
      }
      await host.addProvider(provider, { linkName: p.linkName });
    }
    const byName = new Map<string, string>();
    for (let i = 0; i < plan.actors.length; i++) {
      const a = plan.actors[i]!;
      const { path: _path, ...options } = a;
      const info = await host.startActor(actorBytes[i]!, options);
      // A claims name or module key names the actor's only instance; instance ids name themselves.
      if (info.id === info.module && info.name) byName.set(info.name, info.id);
    }
    for (const l of plan.links) {
      const actor = byName.get(l.actor) ?? l.actor;
      await host.putLink({ actor, contract: l.contract, linkName: l.linkName, values: l.values });
    }
    return host;
  } catch (err) {
    await host.stop();
    throw err;
  }
}
