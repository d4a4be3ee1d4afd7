/**
 * Publishes a wasm module as an OCI artifact: the module as the one layer
 * (`application/vnd.wasm.content.layer.v1+wasm`), a small JSON config
 * (`application/vnd.wasm.config.v1+json`) and an OCI image manifest tagged as the reference says.
 * Blobs the registry already has are not uploaded again.
 */
import pino, { type Logger } from 'pino';
import { z } from 'zod';
import { parseWith } from '../../host/index.ts';
import { RegistryClient } from './client.ts';
import { findCredentials, registryCredentialsSchema } from './credentials.ts';
import { sha256Digest } from './digest.ts';
import { RegistryError } from '../errors.ts';
import { MEDIA_TYPES } from './manifest.ts';
import { imageIdFor, parseImageReference } from './reference.ts';
import { isWasmBinary, timeoutsSchema } from './puller.ts';

const isLogger = (v: unknown): boolean => typeof v === 'object' && v !== null && typeof (v as Logger).child === 'function';

export const pushWasmOptionsSchema = z.object({
  credentials: z.array(registryCredentialsSchema).optional(),
  /** Registries (`host` or `host:port`) reachable over plain HTTP. Loopback always is. Default none. */
  insecureRegistries: z.array(z.string().min(1)).default([]),
  /** Manifest annotations, added to (and overriding) the defaults. */
  annotations: z.record(z.string().min(1), z.string()).default({}),
  /** `org.opencontainers.image.title` of the layer (a file name). Default `module.wasm`. */
  title: z.string().min(1).default('module.wasm'),
  /** Creation time recorded in the config and annotations. Default now. */
  created: z.date().optional(),
  timeouts: timeoutsSchema.prefault({}),
  userAgent: z.string().min(1).default('wasmlet'),
  logger: z.custom<Logger>(isLogger, 'expected a pino logger').optional(),
  signal: z.instanceof(AbortSignal).optional(),
});
export type PushWasmOptions = z.input<typeof pushWasmOptionsSchema>;

export interface PushResult {
  /** sha256:… of the manifest */
  manifestDigest: string;
  /** sha256:… of the wasm layer */
  layerDigest: string;
  /** sha256:… of the config blob */
  configDigest: string;
  /** `registry/repository@sha256:…`, as a puller reports it */
  imageID: string;
  /** The fully qualified reference that was pushed. */
  reference: string;
}

export async function pushWasm(bytes: Uint8Array, ref: string, options: PushWasmOptions = {}): Promise<PushResult> {
  const o = parseWith(pushWasmOptionsSchema, 'push options', options);
  const image = parseImageReference(ref);
  if (!isWasmBinary(bytes)) throw new RegistryError('NOT_WASM', `refusing to push to ${ref}: the file is not a WebAssembly binary (no \\0asm header)`);
  const logger = (o.logger ?? pino({ level: 'silent' })).child({ image: `${image.registry}/${image.repository}` });
  const created = (o.created ?? new Date()).toISOString();
  const layerDigest = sha256Digest(bytes);

  // The CNCF wasm OCI artifact config fields that apply to any wasm module.
  const config = new TextEncoder().encode(JSON.stringify({ created, architecture: 'wasm', layerDigests: [layerDigest] }));
  const configDigest = sha256Digest(config);
  const manifest = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.ociManifest,
    config: { mediaType: MEDIA_TYPES.wasmConfig, digest: configDigest, size: config.byteLength },
    layers: [{ mediaType: MEDIA_TYPES.wasmLayer, digest: layerDigest, size: bytes.byteLength, annotations: { 'org.opencontainers.image.title': o.title } }],
    annotations: { 'org.opencontainers.image.created': created, ...o.annotations },
  };
  const manifestBytes = new TextEncoder().encode(JSON.stringify(manifest));

  const client = new RegistryClient({
    registry: image.registry,
    credentials: findCredentials(o.credentials, image.registry, image.repository),
    insecureRegistries: o.insecureRegistries,
    requestTimeoutMs: o.timeouts.requestMs,
    blobTimeoutMs: o.timeouts.blobMs,
    maxManifestBytes: manifestBytes.byteLength,
    maxBlobBytes: Math.max(bytes.byteLength, config.byteLength),
    logger,
    userAgent: o.userAgent,
    signal: o.signal,
  });
  for (const [digest, blob] of [[layerDigest, bytes], [configDigest, config]] as const) {
    if (await client.blobExists(image.repository, digest)) {
      logger.debug({ digest }, 'blob already in the registry');
      continue;
    }
    await client.uploadBlob(image.repository, blob, digest);
  }
  const manifestDigest = sha256Digest(manifestBytes);
  if (image.digest !== undefined && image.digest !== manifestDigest) {
    throw new RegistryError('DIGEST_MISMATCH', `cannot push ${ref}: the manifest's digest is ${manifestDigest}, not the one the reference pins`);
  }
  await client.putManifest(image.repository, image.tag ?? manifestDigest, manifestBytes, MEDIA_TYPES.ociManifest);
  const reference = `${image.registry}/${image.repository}${image.tag !== undefined ? `:${image.tag}` : `@${manifestDigest}`}`;
  logger.info({ reference, manifestDigest, layerDigest, size: bytes.byteLength }, 'pushed wasm artifact');
  return { manifestDigest, layerDigest, configDigest, imageID: imageIdFor(image, manifestDigest), reference };
}
