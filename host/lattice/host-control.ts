/**
 * The `ControlHost` adapter over a `Host`: what a host process hands its `ControlServer`.
 * `load(ref)` turns a `ctl start actor REF` reference into bytes (a file path, an OCI
 * reference…); the CLI decides what references it accepts.
 */
import type { Host } from '../host.ts';
import { InvocationError } from '../errors.ts';
import type { ControlHost, InventoryActor } from './control-protocol.ts';

export interface HostControlOptions {
  /** Reads the actor a `ctl start actor` reference names; rejects with a message saying why not. */
  load(ref: string): Promise<Uint8Array>;
}

export function hostControl(host: Host, options: HostControlOptions): ControlHost {
  const actors = (): InventoryActor[] => host.actors().map((a) => ({ ...a }));
  return {
    id: host.id,
    labels: () => ({ ...host.options.labels }),
    inventory: () => ({ hostId: host.id, labels: { ...host.options.labels }, actors: actors(), providers: host.providers() }),
    async startActor(req) {
      const bytes = await options.load(req.ref);
      const info = await host.startActor(bytes, {
        ...(req.config ? { config: req.config } : {}),
        ...(req.maxInstances ? { maxInstances: req.maxInstances } : {}),
        ...(req.maxConcurrency ? { maxConcurrency: req.maxConcurrency } : {}),
        ...(req.maxMemoryMiB ? { maxMemoryMiB: req.maxMemoryMiB } : {}),
        ...(req.deadlineMs ? { deadlineMs: req.deadlineMs } : {}),
      });
      // Claims reach the lattice through the host's actor_started event.
      return { actor: { ...info } };
    },
    async stopActor(actor) {
      if (!host.actor(actor)) return false;
      try {
        await host.stopActor(actor);
        return true;
      } catch (err) {
        // Stopped concurrently by someone else: not running here any more.
        if (err instanceof InvocationError && err.code === 'ACTOR_NOT_FOUND') return false;
        throw err;
      }
    },
    putLink: (link) => host.putLink(link),
    deleteLink: (actor, contract, linkName) => host.deleteLink(actor, contract, linkName),
    onEvent: (listener) => host.onEvent(listener),
  };
}
