/**
 * The links of one actor container: the annotation links that apply to it, an HTTP server link for
 * its ports, and the values each gets. Values, lowest precedence first: the container's env (as
 * Krustlet's wascc-provider passed env to every binding), then `PORT` from a port (HTTP server
 * links), then the values written in the annotations.
 */
import type { V1Container } from '@kubernetes/client-node';
import { HTTP_SERVER } from '../host/index.ts';
import type { LinkSpec } from './annotations.ts';

export interface PlannedLink {
  contract: string;
  linkName: string;
  provider?: string;
  values: Record<string, string>;
  /** What asked for it: an annotation key, or `containerPort`. */
  source: string;
}

/** hostPort when given (actors listen on the node), else containerPort. */
function portNumber(p: { containerPort: number; hostPort?: number }): number {
  return p.hostPort && p.hostPort > 0 ? p.hostPort : p.containerPort;
}

export function planLinks(specs: readonly LinkSpec[], container: V1Container, env: Record<string, string>): PlannedLink[] {
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
      link.values.PORT = String(portNumber(ports[i]!));
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
    fallback.values.PORT = String(portNumber(ports[free]!));
  }
  for (const [link, values] of annotated) Object.assign(link.values, values);
  return out;
}
