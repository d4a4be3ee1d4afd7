/**
 * An ImagePuller for tests: images are served from a map (reference → bytes), with the digest
 * and imageID a registry would give. It records every pull, and can be made unreachable (every
 * pull fails as a registry outage would) or slow.
 */
import { createHash } from 'node:crypto';
import type { ImagePuller, PulledImage, PullPolicy, RegistryCredentials } from '../../kube/index.ts';

export interface PullRecord {
  ref: string;
  policy: PullPolicy;
  credentials: RegistryCredentials[];
}

export class FakeImagePuller implements ImagePuller {
  readonly images = new Map<string, Uint8Array>();
  readonly pulls: PullRecord[] = [];
  /** When true, every pull fails like an unreachable registry. */
  unreachable = false;
  /** Added to every pull (ms). */
  delayMs = 0;
  readonly #cached = new Set<string>();

  constructor(images: Record<string, Uint8Array> = {}) {
    for (const [ref, bytes] of Object.entries(images)) this.images.set(ref, bytes);
  }

  set(ref: string, bytes: Uint8Array): this {
    this.images.set(ref, bytes);
    return this;
  }

  async pull(ref: string, options: { policy: PullPolicy; credentials?: RegistryCredentials[]; signal?: AbortSignal }): Promise<PulledImage> {
    this.pulls.push({ ref, policy: options.policy, credentials: options.credentials ?? [] });
    if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
    if (options.signal?.aborted) throw Object.assign(new Error('pull aborted'), { code: 'ABORTED' });
    const cachedOnly = options.policy === 'Never';
    if (cachedOnly && !this.#cached.has(ref)) throw Object.assign(new Error(`image ${ref} is not cached and pull policy is Never`), { code: 'NOT_CACHED' });
    if (this.unreachable && !(options.policy === 'IfNotPresent' && this.#cached.has(ref))) {
      throw Object.assign(new Error(`registry for ${ref} unreachable: connect ECONNREFUSED`), { code: 'UNREACHABLE' });
    }
    const bytes = this.images.get(ref);
    if (!bytes) throw Object.assign(new Error(`manifest unknown: ${ref}`), { code: 'NOT_FOUND' });
    this.#cached.add(ref);
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    const repo = ref.replace(/[:@][^/]*$/, '');
    return { bytes, digest, manifestDigest: digest, imageID: `${repo}@${digest}` };
  }
}
