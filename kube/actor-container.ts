/**
 * One actor container: the actor's claims are checked against the links the pod asks for before
 * anything starts (so a refused pod touches nothing), then the actor starts with the container's
 * env as config, then its links are put; any failure undoes what this start did. Stopping
 * removes the links first (the HTTP server stops accepting and drains in-flight requests), then
 * stops the actor; the caller bounds it by the grace period (`withinGrace`).
 */
import type { V1Container } from '@kubernetes/client-node';
import { canonicalContract, isActorLoadError, isClaimsError, isWasmletError, verifyActor, type Host, type VerifiedActor } from '../host/index.ts';
import { actorLimits } from './actor-limits.ts';
import { PodError } from './errors.ts';
import type { PlannedLink } from './link-plan.ts';

/** Which pod runs which actor on this node (one actor, one pod: links are per actor). */
export type ActorOwners = Map<string, { uid: string; pod: string }>;

export interface RunningActor {
  id: string;
  name: string;
  links: PlannedLink[];
}

export interface ActorContainerStart {
  host: Host;
  bytes: Uint8Array;
  container: V1Container;
  links: PlannedLink[];
  env: Record<string, string>;
  /** The pod's annotations (for `wasmlet.dev/max-concurrency`). */
  annotations?: Record<string, string>;
  owners: ActorOwners;
  pod: { uid: string; key: string };
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
  const id = verified.subject;
  const name = verified.claims.wascap.name ?? id;
  const owner = s.owners.get(id);
  if (owner && owner.uid !== s.pod.uid) {
    throw new PodError('ACTOR_CONFLICT', `container ${cname}: actor ${id} (${name}) already runs for pod ${owner.pod} on this node`, { reason: 'ActorConflict', fatal: true, container: cname });
  }
  const caps = (verified.claims.wascap.caps ?? []).map(canonicalContract);
  for (const l of s.links) {
    if (!caps.includes(l.contract)) {
      throw new PodError(
        'LINK_NOT_CLAIMED',
        `container ${cname}: actor ${id} (${name}) does not claim ${l.contract} (link ${l.linkName}, asked for by ${l.source}); its claims allow: ${(verified.claims.wascap.caps ?? []).join(', ') || 'nothing'}`,
        { reason: 'LinkNotClaimed', fatal: true, container: cname },
      );
    }
  }
  s.owners.set(id, { uid: s.pod.uid, pod: s.pod.key });
  try {
    await s.host.startActor(s.bytes, { config: s.env, ...limits });
  } catch (err) {
    s.owners.delete(id);
    if (isActorLoadError(err) && /already running/.test(err.message)) {
      throw new PodError('ACTOR_CONFLICT', `container ${cname}: ${err.message}`, { reason: 'ActorConflict', fatal: true, container: cname, cause: err });
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
    await stopActorContainer(s.host, { id, name, links: put }).catch(() => {});
    s.owners.delete(id);
    const l = s.links[put.length]!;
    const fatal = isWasmletError(err) && err.code === 'LINK_NOT_CLAIMED';
    throw new PodError(fatal ? 'LINK_NOT_CLAIMED' : 'LINK_REFUSED', `container ${cname}: link ${l.contract} (${l.linkName}) refused: ${(err as Error).message}`, {
      reason: fatal ? 'LinkNotClaimed' : 'RunContainerError',
      fatal,
      container: cname,
      cause: err,
    });
  }
  return { id, name, links: put };
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
