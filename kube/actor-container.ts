/**
 * One actor container: the actor's claims are checked against the links the pod asks for before
 * anything starts (so a refused pod touches nothing), then an instance of the actor starts under
 * the container's own identity (`namespace/pod/container`) with the container's env as config,
 * then its links are put; any failure undoes what this start did. Stopping removes the links
 * first (the HTTP server stops accepting and drains in-flight requests), then stops the instance;
 * the caller bounds it by the grace period (`withinGrace`).
 */
import type { V1Container } from '@kubernetes/client-node';
import { canonicalContract, isActorLoadError, isClaimsError, isWasmletError, verifyActor, type Host, type VerifiedActor } from '../host/index.ts';
import { actorLimits } from './actor-limits.ts';
import { PodError } from './errors.ts';
import type { PlannedLink } from './link-plan.ts';

export interface RunningActor {
  /** The instance id (`namespace/pod/container`): what links, invocations and logs name. */
  id: string;
  /** The actor's module key. */
  module: string;
  name: string;
  links: PlannedLink[];
}

export interface ActorContainerStart {
  host: Host;
  bytes: Uint8Array;
  container: V1Container;
  links: PlannedLink[];
  env: Record<string, string>;
  /** The instance id. */
  instance: string;
  /** The pod's annotations (for `wasmlet.dev/max-concurrency`). */
  annotations?: Record<string, string>;
}

/** The instance id of a pod's container. */
export function instanceId(namespace: string, pod: string, container: string): string {
  return `${namespace}/${pod}/${container}`;
}

function rejected(container: string, err: unknown): PodError {
  const code = isWasmletError(err) ? ` [${err.code}]` : '';
  return new PodError('ACTOR_REJECTED', `container ${container}: ${(err as Error).message}${code}`, { reason: 'ActorRejected', fatal: true, container, cause: err });
}

export async function startActorContainer(s: ActorContainerStart): Promise<RunningActor> {
  const cname = s.container.name;
  const limits = actorLimits(s.annotations, s.container);
  let verified: VerifiedActor;
  try {
    verified = verifyActor(s.bytes, { issuers: s.host.options.issuers });
  } catch (err) {
    throw rejected(cname, err);
  }
  const module = verified.subject;
  const id = s.instance;
  const name = verified.claims.wascap.name ?? module;
  const caps = (verified.claims.wascap.caps ?? []).map(canonicalContract);
  for (const l of s.links) {
    if (!caps.includes(l.contract)) {
      throw new PodError(
        'LINK_NOT_CLAIMED',
        `container ${cname}: actor ${module} (${name}) does not claim ${l.contract} (link ${l.linkName}, asked for by ${l.source}); its claims allow: ${(verified.claims.wascap.caps ?? []).join(', ') || 'nothing'}`,
        { reason: 'LinkNotClaimed', fatal: true, container: cname },
      );
    }
  }
  try {
    await s.host.startActor(s.bytes, { config: s.env, instance: id, ...limits });
  } catch (err) {
    if (isActorLoadError(err) && /already running/.test(err.message)) {
      // The instance of an earlier pod of the same name is still stopping: retried with backoff.
      throw new PodError('START_FAILED', `container ${cname}: ${err.message}`, { reason: 'RunContainerError', fatal: false, container: cname, cause: err });
    }
    if (isActorLoadError(err) || isClaimsError(err)) throw rejected(cname, err);
    throw new PodError('START_FAILED', `container ${cname}: ${(err as Error).message}`, { reason: 'RunContainerError', fatal: false, container: cname, cause: err });
  }
  const put: PlannedLink[] = [];
  try {
    for (const l of s.links) {
      await s.host.putLink({ actor: id, contract: l.contract, linkName: l.linkName, values: l.values, ...(l.provider ? { provider: l.provider } : {}) });
      put.push(l);
    }
  } catch (err) {
    await stopActorContainer(s.host, { id, module, name, links: put }).catch(() => {});
    const l = s.links[put.length]!;
    const fatal = isWasmletError(err) && err.code === 'LINK_NOT_CLAIMED';
    throw new PodError(fatal ? 'LINK_NOT_CLAIMED' : 'LINK_REFUSED', `container ${cname}: link ${l.contract} (${l.linkName}) refused: ${(err as Error).message}`, {
      reason: fatal ? 'LinkNotClaimed' : 'RunContainerError',
      fatal,
      container: cname,
      cause: err,
    });
  }
  return { id, module, name, links: put };
}

/** Removes the actor's links (draining its HTTP server), then stops it, letting in-flight calls finish within `drainMs`. */
export async function stopActorContainer(host: Host, actor: RunningActor, drainMs?: number): Promise<void> {
  await Promise.all(actor.links.map((l) => host.deleteLink(actor.id, l.contract, l.linkName).catch(() => false)));
  if (host.actor(actor.id)) await host.stopActor(actor.id, drainMs !== undefined ? { drainMs } : {});
}

/** Resolves when `work` settles or `ms` passed, whichever is first (the work goes on). */
export async function withinGrace(work: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const grace = new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.max(ms, 0))));
  try {
    await Promise.race([work.then(() => undefined, () => undefined), grace]);
  } finally {
    clearTimeout(timer);
  }
}
