/**
 * Pulls wasm artifacts for the kubelet: resolve the reference, check the manifest is a wasm
 * artifact, download the layer with its digest checked, and keep both in a disk cache.
 *
 * Pull policies, as the kubelet defines them:
 * - `IfNotPresent`: a cached tag (or digest) is used with no network at all.
 * - `Always`: the manifest is resolved again (which also re-checks access); cached blobs are reused.
 * - `Never`: the cache only; NOT_CACHED when the image is not there.
 * Concurrent pulls of the same reference (same policy and credentials) share one download.
 * `file:///abs/path.wasm` references read a local file, only with `allowLocalFiles: true`.
 */
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import pino, { type Logger } from 'pino';
import { z } from 'zod';
import { parseWith } from '../../host/index.ts';
import { ImageCache } from './cache.ts';
import { RegistryClient } from './client.ts';
import { findCredentials, registryCredentialsSchema, type RegistryCredentials, type ResolvedCredentials } from './credentials.ts';
import { sha256Digest } from './digest.ts';
import { RegistryError, isRegistryError } from '../errors.ts';
import { parseManifest, wasmEntryOf, wasmLayerOf, type Descriptor, type ImageManifest } from './manifest.ts';
import { formatImageReference, imageIdFor, manifestReference, parseImageReference, type ImageReference } from './reference.ts';
import { SharedTasks } from './shared-task.ts';

export { credentialsFromDockerConfigJson, type RegistryCredentials } from './credentials.ts';

export interface PulledImage {
  bytes: Uint8Array;
  /** sha256:… of the wasm layer */
  digest: string;
  /** sha256:… of the manifest */
  manifestDigest: string;
  /** what containerStatuses[].imageID shows, e.g. `127.0.0.1:5000/hello@sha256:…` */
  imageID: string;
}

export type PullPolicy = 'Always' | 'IfNotPresent' | 'Never';

export interface PullOptions {
  policy: PullPolicy;
  credentials?: RegistryCredentials[];
  signal?: AbortSignal;
}

export interface ImagePuller {
  pull(ref: string, options: PullOptions): Promise<PulledImage>;
}

const isLogger = (v: unknown): boolean => typeof v === 'object' && v !== null && typeof (v as Logger).child === 'function';

export const timeoutsSchema = z.object({
  /** One small request (manifest, token, upload control), ms. Default 30000. */
  requestMs: z.number().int().min(1).max(600_000).default(30_000),
  /** One blob download or upload, ms. Default 600000. */
  blobMs: z.number().int().min(1).max(3_600_000).default(600_000),
});

export const imagePullerOptionsSchema = z.object({
  /** Where blobs and refs are cached. Required. */
  cacheDir: z.string().min(1),
  /** Registries (`host` or `host:port`) reachable over plain HTTP. Loopback always is. Default none. */
  insecureRegistries: z.array(z.string().min(1)).default([]),
  /**
   * Registry mirrors, as containerd's: images named under a registry host (the key, e.g.
   * `127.0.0.1:5000`) are fetched from another (the value). References, cache keys and imageIDs
   * keep the name the pod gave. Default none.
   */
  mirrors: z.record(z.string().min(1), z.string().min(1)).default({}),
  timeouts: timeoutsSchema.prefault({}),
  /** Largest manifest accepted. Default 4 MiB. */
  maxManifestBytes: z.number().int().min(1024).default(4 * 1024 * 1024),
  /** Largest wasm layer (or local file) accepted. Default 512 MiB. */
  maxBlobBytes: z.number().int().min(1).default(512 * 1024 * 1024),
  /** Accept `file:///…` references. Default false: pods must not read the node's disk. */
  allowLocalFiles: z.boolean().default(false),
  userAgent: z.string().min(1).default('wasmlet'),
  /** Default: silent. */
  logger: z.custom<Logger>(isLogger, 'expected a pino logger').optional(),
});
export type ImagePullerOptions = z.input<typeof imagePullerOptionsSchema>;
export type ParsedImagePullerOptions = z.output<typeof imagePullerOptionsSchema>;

export function parseImagePullerOptions(input: unknown): ParsedImagePullerOptions {
  return parseWith(imagePullerOptionsSchema, 'image puller options', input);
}

const pullOptionsSchema = z.object({
  policy: z.enum(['Always', 'IfNotPresent', 'Never']),
  credentials: z.array(registryCredentialsSchema).optional(),
  signal: z.instanceof(AbortSignal).optional(),
});

const WASM_MAGIC = [0x00, 0x61, 0x73, 0x6d];

export function isWasmBinary(bytes: Uint8Array): boolean {
  return bytes.length >= 8 && WASM_MAGIC.every((b, i) => bytes[i] === b);
}

function fingerprint(creds: ResolvedCredentials | undefined): string {
  return creds ? createHash('sha256').update(JSON.stringify(creds)).digest('hex') : 'anonymous';
}

class RegistryImagePuller implements ImagePuller {
  readonly #o: ParsedImagePullerOptions;
  readonly #logger: Logger;
  readonly #cache: ImageCache;
  readonly #pulls = new SharedTasks<PulledImage>();

  constructor(options: ParsedImagePullerOptions) {
    this.#o = options;
    this.#logger = options.logger ?? pino({ level: 'silent' });
    this.#cache = new ImageCache(options.cacheDir, this.#logger);
  }

  async pull(ref: string, options: PullOptions): Promise<PulledImage> {
    const { policy, signal, credentials } = parseWith(pullOptionsSchema, 'pull options', options);
    if (/^file:/i.test(ref)) return this.#pullLocal(ref);
    const image = parseImageReference(ref);
    const creds = findCredentials(credentials, image.registry, image.repository);
    const canonical = formatImageReference(image);
    const key = `${policy}\0${canonical}\0${fingerprint(creds)}`;
    return this.#pulls.run(key, `pull of ${ref}`, signal, (shared) => this.#pull(image, canonical, policy, creds, shared));
  }

  async #pull(image: ImageReference, canonical: string, policy: PullPolicy, creds: ResolvedCredentials | undefined, signal: AbortSignal): Promise<PulledImage> {
    const log = this.#logger.child({ image: canonical });
    // Tags move, so only tag refs get a refs entry; a digest names its manifest for ever.
    const tagRef = image.digest === undefined ? `${image.registry}/${image.repository}:${image.tag}` : undefined;
    if (policy !== 'Always') {
      const hit = await this.#fromCache(image, tagRef);
      if (hit) {
        log.debug({ policy, digest: hit.digest }, 'image found in the cache');
        return hit;
      }
      if (policy === 'Never') {
        throw new RegistryError('NOT_CACHED', `image ${canonical} is not in the cache and the pull policy is Never (pull it first, or use IfNotPresent)`);
      }
    }
    const client = new RegistryClient({
      registry: this.#o.mirrors[image.registry] ?? image.registry,
      credentials: creds,
      insecureRegistries: this.#o.insecureRegistries,
      requestTimeoutMs: this.#o.timeouts.requestMs,
      blobTimeoutMs: this.#o.timeouts.blobMs,
      maxManifestBytes: this.#o.maxManifestBytes,
      maxBlobBytes: this.#o.maxBlobBytes,
      logger: log,
      userAgent: this.#o.userAgent,
      signal,
    });
    const started = Date.now();
    const top = await client.getManifest(image.repository, manifestReference(image));
    const fetched: Array<{ digest: string; bytes: Uint8Array }> = [top];
    const parsed = parseManifest(top.bytes, top.contentType, `image ${canonical}`);
    let manifest: ImageManifest;
    if (parsed.kind === 'index') {
      const entry = wasmEntryOf(parsed.index, `image ${canonical}`);
      const child = await client.getManifest(image.repository, entry.digest);
      const inner = parseManifest(child.bytes, child.contentType ?? entry.mediaType, `image ${canonical} (${entry.digest})`);
      if (inner.kind !== 'manifest') throw new RegistryError('BAD_MANIFEST', `image ${canonical}: an index inside an index is not supported`);
      fetched.push(child);
      manifest = inner.manifest;
    } else {
      manifest = parsed.manifest;
    }
    const layer = wasmLayerOf(manifest, `image ${canonical}`);
    let bytes = await this.#cache.readBlob(layer.digest);
    const reused = bytes !== undefined;
    bytes ??= await client.getBlob(image.repository, layer);
    if (!isWasmBinary(bytes)) {
      throw new RegistryError('NOT_WASM', `image ${canonical}: its wasm layer ${layer.digest} is not a WebAssembly binary (no \\0asm header)`);
    }
    await this.#store(log, layer, bytes, reused, fetched, tagRef, top.digest);
    log.info({ policy, digest: layer.digest, manifestDigest: top.digest, size: bytes.byteLength, cachedLayer: reused, ms: Date.now() - started }, 'pulled image');
    return { bytes, digest: layer.digest, manifestDigest: top.digest, imageID: imageIdFor(image, top.digest) };
  }

  /** Caches what a pull verified. A cache that cannot be written costs a later re-pull, not this pull. */
  async #store(
    log: Logger,
    layer: Descriptor,
    bytes: Uint8Array,
    reused: boolean,
    manifests: Array<{ digest: string; bytes: Uint8Array }>,
    tagRef: string | undefined,
    manifestDigest: string,
  ): Promise<void> {
    try {
      if (!reused) await this.#cache.writeBlob(layer.digest, bytes);
      for (const m of manifests) await this.#cache.writeBlob(m.digest, m.bytes);
      if (tagRef) await this.#cache.writeRef(tagRef, manifestDigest);
    } catch (err) {
      log.warn({ err, cacheDir: this.#cache.dir }, 'cannot write the image cache');
    }
  }

  async #fromCache(image: ImageReference, tagRef: string | undefined): Promise<PulledImage | undefined> {
    const manifestDigest = image.digest ?? (tagRef ? (await this.#cache.readRef(tagRef))?.manifestDigest : undefined);
    if (!manifestDigest) return undefined;
    const layer = await this.#cachedLayer(manifestDigest);
    if (!layer) return undefined;
    const bytes = await this.#cache.readBlob(layer.digest);
    if (!bytes) return undefined;
    return { bytes, digest: layer.digest, manifestDigest, imageID: imageIdFor(image, manifestDigest) };
  }

  /** The wasm layer named by a cached manifest (following a cached index); undefined on any gap. */
  async #cachedLayer(manifestDigest: string): Promise<Descriptor | undefined> {
    try {
      const bytes = await this.#cache.readBlob(manifestDigest);
      if (!bytes) return undefined;
      let parsed = parseManifest(bytes, undefined, `cached manifest ${manifestDigest}`);
      if (parsed.kind === 'index') {
        const entry = wasmEntryOf(parsed.index, `cached index ${manifestDigest}`);
        const inner = await this.#cache.readBlob(entry.digest);
        if (!inner) return undefined;
        parsed = parseManifest(inner, entry.mediaType, `cached manifest ${entry.digest}`);
        if (parsed.kind !== 'manifest') return undefined;
      }
      return wasmLayerOf(parsed.manifest, `cached manifest ${manifestDigest}`);
    } catch (err) {
      if (!isRegistryError(err)) throw err;
      this.#logger.warn({ err, manifestDigest }, 'cached manifest is unusable; pulling again');
      return undefined;
    }
  }

  async #pullLocal(ref: string): Promise<PulledImage> {
    if (!this.#o.allowLocalFiles) {
      throw new RegistryError('LOCAL_FILES_DISABLED', `local file reference ${ref} refused: local files are allowed only when the puller is created with allowLocalFiles: true`);
    }
    let path: string;
    try {
      const url = new URL(ref);
      if (url.host !== '' && url.host !== 'localhost') throw new Error(`file URLs name no host (got ${url.host})`);
      if (url.search || url.hash) throw new Error('file URLs take no query or fragment');
      path = fileURLToPath(url);
    } catch (err) {
      throw new RegistryError('BAD_REFERENCE', `invalid local file reference ${JSON.stringify(ref)}: write file:///absolute/path/to/module.wasm (${(err as Error).message})`, { cause: err });
    }
    let bytes: Uint8Array;
    try {
      const info = await stat(path);
      if (!info.isFile()) throw new RegistryError('LOCAL_FILE', `local file reference ${ref}: ${path} is not a regular file`);
      if (info.size > this.#o.maxBlobBytes) throw new RegistryError('TOO_LARGE', `local file ${path} is ${info.size} bytes, more than the limit of ${this.#o.maxBlobBytes}`);
      bytes = new Uint8Array(await readFile(path));
    } catch (err) {
      if (isRegistryError(err)) throw err;
      throw new RegistryError('LOCAL_FILE', `cannot read local file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
    }
    if (!isWasmBinary(bytes)) throw new RegistryError('NOT_WASM', `local file ${path} is not a WebAssembly binary (no \\0asm header)`);
    const digest = sha256Digest(bytes);
    // No manifest exists for a local file: its own digest stands in for the manifest's.
    return { bytes, digest, manifestDigest: digest, imageID: `${pathToFileURL(path).href}@${digest}` };
  }
}

export function createImagePuller(options: ImagePullerOptions): ImagePuller {
  return new RegistryImagePuller(parseImagePullerOptions(options));
}
