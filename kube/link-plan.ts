/**
 * The links of one actor container: the annotation links that apply to it, an HTTP server link for
 * its ports, and the values each gets. Values, lowest precedence first: the container's env (as
 * Krustlet's wascc-provider passed env to every binding), then `ADDRESS` (the pod's IP) and `PORT`
 * (from a containerPort) for HTTP server links, then the values written in the annotations.
 * A `hostPort` is not where the actor listens: the node forwards it (host-ports.ts).
 */
import type { V1Container } from '@kubernetes/client-node';
import { HTTP_SERVER } from '../host/index.ts';
import type { LinkSpec } from './annotations.ts';
import { annotationError } from './errors.ts';

export interface PlannedLink {
  contract: string;
  linkName: string;
  provider?: string;
  values: Record<string, string>;
  /** What asked for it: an annotation key, or `containerPort`. */
  source: string;
}

/** `podIP`: the address the pod's HTTP servers listen on. */
export function planLinks(specs: readonly LinkSpec[], container: V1Container, env: Record<string, string>, podIP: string): PlannedLink[] {
  const mine = specs.filter((s) => s.container === undefined || s.container === container.name);
  // A container-specific entry replaces a pod-wide one for the same link.
  const byKey = new Map<string, LinkSpec>();
  for (const s of mine) {
    const key = `${s.contract}|${s.linkName}`;
    if (!byKey.has(key) || s.container !== undefined) byKey.set(key, s);
  }
  const out: PlannedLink[] = [...byKey.values()].map((s) => ({
    contract: s.contract,
    linkName: s.linkName,
    values: { ...env },
    source: s.source,
    ...(s.provider ? { provider: s.provider } : {}),
  }));
  const annotated = new Map<PlannedLink, Record<string, string>>(out.map((l, i) => [l, [...byKey.values()][i]!.values]));

  const ports = (container.ports ?? []).filter((p) => (p.protocol ?? 'TCP') === 'TCP');
  const used = new Set<number>();
  // A port named like an HTTP link's link name feeds that link.
  for (const link of out) {
    if (link.contract !== HTTP_SERVER) continue;
    const i = ports.findIndex((p, idx) => !used.has(idx) && p.name === link.linkName);
    if (i >= 0) {
      used.add(i);
      link.values.PORT = String(ports[i]!.containerPort);
    }
  }
  // The first other port feeds the default HTTP server link, which it asks for when absent.
  const free = ports.findIndex((_, idx) => !used.has(idx));
  let fallback = out.find((l) => l.contract === HTTP_SERVER && l.linkName === 'default');
  if (free >= 0 && !(fallback && ports.some((p, idx) => used.has(idx) && p.name === 'default'))) {
    if (!fallback) {
      fallback = { contract: HTTP_SERVER, linkName: 'default', values: { ...env }, source: 'containerPort' };
      out.push(fallback);
    }
    fallback.values.PORT = String(ports[free]!.containerPort);
  }
  for (const link of out) if (link.contract === HTTP_SERVER) link.values.ADDRESS = podIP;
  for (const [link, values] of annotated) {
    // A pod listens on its own address only: never on the node's others, nor another pod's.
    if (link.contract === HTTP_SERVER && values.ADDRESS !== undefined && values.ADDRESS !== podIP) {
      throw annotationError(link.source, `ADDRESS ${JSON.stringify(values.ADDRESS)}: a pod's HTTP servers listen on the pod's own address (${podIP}); leave ADDRESS out`);
    }
    Object.assign(link.values, values);
  }
  return out;
}
