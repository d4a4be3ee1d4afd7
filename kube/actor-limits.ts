/**
 * The limits a pod sets for its actors: `wasmlet.dev/max-concurrency` (a pod annotation: calls of
 * each of its actors that run at once, the actor's share of the node's workers) and a
 * container's `resources.limits.memory` (linear memory of one instance of that container's actor).
 */
import type { V1Container } from '@kubernetes/client-node';
import { annotationError, podSpecError } from './errors.ts';

export const MAX_CONCURRENCY_ANNOTATION = 'wasmlet.dev/max-concurrency';

export interface ActorLimits {
  maxConcurrency?: number;
  maxMemoryMiB?: number;
}

const SUFFIXES: Record<string, number> = {
  '': 1,
  m: 1e-3,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};
const QUANTITY = /^([+]?)([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E)|[eE]([+-]?[0-9]+))?$/;

/** A Kubernetes quantity (`64Mi`, `100M`, `1.5Gi`, `128974848`, `129e6`) in bytes; undefined when it is not one. */
export function parseQuantity(text: string): number | undefined {
  const m = QUANTITY.exec(text.trim());
  if (!m) return undefined;
  const n = Number(m[2]);
  const scale = m[4] !== undefined ? 10 ** Number(m[4]) : SUFFIXES[m[3] ?? '']!;
  const v = n * scale;
  return Number.isFinite(v) ? v : undefined;
}

/** Reads the pod's actor annotations and the container's memory limit. Throws a fatal PodError for a malformed one. */
export function actorLimits(annotations: Record<string, string> | undefined, container: V1Container): ActorLimits {
  const out: ActorLimits = {};
  const conc = annotations?.[MAX_CONCURRENCY_ANNOTATION];
  if (conc !== undefined) {
    if (!/^[0-9]{1,4}$/.test(conc.trim()) || Number(conc) < 1 || Number(conc) > 1024) {
      throw annotationError(MAX_CONCURRENCY_ANNOTATION, `must be a whole number from 1 to 1024 (calls of each actor of the pod that run at once), got ${JSON.stringify(conc)}`);
    }
    out.maxConcurrency = Number(conc);
  }
  const memory = container.resources?.limits?.memory as unknown;
  if (memory !== undefined) {
    const bytes = parseQuantity(String(memory));
    if (bytes === undefined) throw podSpecError(`container ${container.name}: resources.limits.memory ${JSON.stringify(memory)} is not a quantity`, container.name);
    const mib = Math.floor(bytes / 2 ** 20);
    if (mib < 1) throw podSpecError(`container ${container.name}: resources.limits.memory ${JSON.stringify(memory)} is below 1Mi, too little for any actor`, container.name);
    out.maxMemoryMiB = Math.min(mib, 4096);
  }
  return out;
}
