/**
 * Image references, parsed the way Docker and the distribution project do:
 * `[registry/]repository[:tag][@algorithm:hex]`.
 *
 * - The first path component is a registry when it contains `.` or `:`, is `localhost`, or has an
 *   upper-case letter (repositories cannot); otherwise the registry is Docker Hub (`docker.io`).
 * - On Docker Hub a one-component repository gets the `library/` prefix (`nginx` → `library/nginx`).
 *   `index.docker.io` and `registry-1.docker.io` are spellings of `docker.io`.
 * - Docker Hub's API lives at `registry-1.docker.io` (see `registryEndpoint`).
 * - Without tag or digest the tag is `latest`. With both, the digest decides what is pulled.
 */
import { RegistryError } from '../errors.ts';

export const DEFAULT_REGISTRY = 'docker.io';
export const DOCKER_HUB_ENDPOINT = 'registry-1.docker.io';

export interface ImageReference {
  /** Registry host (lower case) with its port, if any: `docker.io`, `127.0.0.1:5000`, `[::1]:5000`. */
  registry: string;
  /** Repository path: `library/nginx`, `team/app`. */
  repository: string;
  /** The tag written, or `latest` when neither tag nor digest was written. */
  tag: string | undefined;
  /** `sha256:…` when the reference pins a digest. */
  digest: string | undefined;
}

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN_COMPONENT = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;
const IPV6_HOST = /^\[[0-9a-fA-F:.]+\]$/;
const TAG = /^[\w][\w.-]{0,127}$/;
/** Digest algorithms with the hex length each must have. */
export const DIGEST_ALGORITHMS: Record<string, number> = { sha256: 64, sha512: 128 };
const MAX_NAME_LENGTH = 255;

function bad(ref: string, why: string): RegistryError {
  return new RegistryError('BAD_REFERENCE', `invalid image reference ${JSON.stringify(ref)}: ${why}`);
}

/** Checks `algorithm:hex` (sha256 or sha512, lower-case hex of the right length). */
export function isDigest(value: string): boolean {
  const m = /^([a-z0-9]+):([a-f0-9]+)$/.exec(value);
  return !!m && DIGEST_ALGORITHMS[m[1]!] === m[2]!.length;
}

function validRegistry(host: string): boolean {
  const m = /^(.*?)(?::(\d{1,5}))?$/.exec(host);
  if (!m) return false;
  const [, name, port] = m;
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) return false;
  if (IPV6_HOST.test(name!)) return true;
  return name!.split('.').every((c) => DOMAIN_COMPONENT.test(c));
}

/** `docker.io` for every spelling of Docker Hub; other hosts lower-cased. */
export function normalizeRegistry(host: string): string {
  const h = host.toLowerCase();
  return h === 'index.docker.io' || h === DOCKER_HUB_ENDPOINT ? DEFAULT_REGISTRY : h;
}

/** The host:port to talk HTTP to for a registry (`registry-1.docker.io` for Docker Hub). */
export function registryEndpoint(registry: string): string {
  return normalizeRegistry(registry) === DEFAULT_REGISTRY ? DOCKER_HUB_ENDPOINT : registry;
}

export function parseImageReference(ref: string): ImageReference {
  if (typeof ref !== 'string' || ref.length === 0) throw bad(String(ref), 'it is empty');
  if (/\s/.test(ref)) throw bad(ref, 'it contains white space');
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(ref)) throw bad(ref, 'write it without a scheme (e.g. 127.0.0.1:5000/app:v1, not http://…)');

  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!isDigest(digest)) throw bad(ref, `${JSON.stringify(digest)} is not a digest (expected sha256: and 64 lower-case hex digits)`);
  }

  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw bad(ref, `${JSON.stringify(tag)} is not a valid tag (letters, digits, "_", "." and "-", at most 128, not starting with "." or "-")`);
  }
  if (rest.length === 0) throw bad(ref, 'the repository name is missing');

  let registry = DEFAULT_REGISTRY;
  let path = rest;
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (/[.:]/.test(first) || first === 'localhost' || first !== first.toLowerCase()) {
      if (!validRegistry(first)) throw bad(ref, `${JSON.stringify(first)} is not a valid registry host[:port]`);
      registry = normalizeRegistry(first);
      path = rest.slice(slash + 1);
    }
  }
  if (path.length === 0) throw bad(ref, 'the repository name is missing');
  for (const component of path.split('/')) {
    if (component.length === 0) throw bad(ref, 'the repository path has an empty component');
    if (component !== component.toLowerCase()) throw bad(ref, 'repository names must be lower case');
    if (!PATH_COMPONENT.test(component)) {
      throw bad(ref, `${JSON.stringify(component)} is not a valid repository path component (lower-case letters and digits, separated by ".", "_", "__" or "-")`);
    }
  }
  if (registry === DEFAULT_REGISTRY && !path.includes('/')) path = `library/${path}`;
  if (registry.length + 1 + path.length > MAX_NAME_LENGTH) throw bad(ref, `the name is longer than ${MAX_NAME_LENGTH} characters`);

  if (tag === undefined && digest === undefined) tag = 'latest';
  return { registry, repository: path, tag, digest };
}

/** `registry/repository[:tag][@digest]`, fully qualified. */
export function formatImageReference(ref: ImageReference): string {
  return `${ref.registry}/${ref.repository}${ref.tag !== undefined ? `:${ref.tag}` : ''}${ref.digest !== undefined ? `@${ref.digest}` : ''}`;
}

/** What to ask `/v2/<name>/manifests/<…>` for: the digest when pinned, else the tag. */
export function manifestReference(ref: ImageReference): string {
  return ref.digest ?? ref.tag ?? 'latest';
}

/** `registry/repository@digest`: the form `containerStatuses[].imageID` shows. */
export function imageIdFor(ref: ImageReference, manifestDigest: string): string {
  return `${ref.registry}/${ref.repository}@${manifestDigest}`;
}
