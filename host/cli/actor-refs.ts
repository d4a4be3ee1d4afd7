/**
 * What `ctl start actor REF` may make a host read (the reference comes from a ctl member, and a
 * host must not become a way to read its files or reach addresses of the sender's choosing):
 * a file under the host's `--allow-local-files` directory (a regular file, under the size cap;
 * see `readActorFile`), or an OCI reference from a registry on its `--allowed-registry` list
 * when one is given.
 */
import { ActorLoadError } from '../errors.ts';
import { readActorFile } from '../fs-util.ts';

/** What `ctl start actor` may make a host read. */
export interface ActorRefPolicy {
  /** A directory local actor files may come from; undefined: no local files at all. */
  localFiles: string | undefined;
  /** Registries OCI references may name; empty: any. */
  registries: string[];
  /** Largest actor accepted, bytes. */
  maxBytes: number;
}

export interface ActorRefSources {
  /** The registry host an OCI reference names (throws on a malformed one). */
  registryOf(ref: string): string;
  /** Pulls an OCI reference's wasm bytes. */
  pull(ref: string): Promise<Uint8Array>;
}

/** True when `ref` names a file rather than an OCI reference. */
export function isLocalRef(ref: string): boolean {
  return ref.startsWith('file://') || ref.startsWith('/') || ref.startsWith('.') || ref.endsWith('.wasm');
}

export async function loadActorRef(ref: string, policy: ActorRefPolicy, sources: ActorRefSources): Promise<Uint8Array> {
  if (isLocalRef(ref)) {
    if (policy.localFiles === undefined) throw new ActorLoadError('this host does not take actor files from `ctl start actor` (start it with --allow-local-files DIR to allow files under DIR); give an OCI reference');
    const path = ref.startsWith('file://') ? decodeURIComponent(new URL(ref).pathname) : ref;
    return readActorFile(path, { maxBytes: policy.maxBytes, under: policy.localFiles });
  }
  const registry = sources.registryOf(ref);
  if (policy.registries.length > 0 && !policy.registries.includes(registry)) {
    throw new ActorLoadError(`registry ${registry} is not one this host pulls actors from (--allowed-registry: ${policy.registries.join(', ')})`);
  }
  const bytes = await sources.pull(ref);
  if (bytes.byteLength > policy.maxBytes) throw new ActorLoadError(`${ref} is ${bytes.byteLength} bytes, over the ${policy.maxBytes}-byte cap for an actor`);
  return bytes;
}
