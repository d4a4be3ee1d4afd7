/**
 * OCI / Docker v2 manifests and indexes, and what makes one a wasm artifact.
 *
 * A wasm artifact (as wasm-to-oci, Krustlet and the CNCF wasm OCI artifact layout publish it) is an
 * image manifest with exactly one layer of type `application/vnd.wasm.content.layer.v1+wasm`. We
 * are strict on the layer and lenient on the config: `application/vnd.wasm.config.v1+json` is the
 * norm, but the OCI empty config and other config types that tools such as ORAS write are accepted.
 */
import { z } from 'zod';
import { RegistryError } from '../errors.ts';
import { isDigest } from './reference.ts';

export const MEDIA_TYPES = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  wasmConfig: 'application/vnd.wasm.config.v1+json',
  wasmLayer: 'application/vnd.wasm.content.layer.v1+wasm',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
} as const;

/** What we ask registries for, best first. */
export const MANIFEST_ACCEPT = [MEDIA_TYPES.ociManifest, MEDIA_TYPES.ociIndex, MEDIA_TYPES.dockerManifest, MEDIA_TYPES.dockerManifestList].join(', ');

const INDEX_TYPES = new Set<string>([MEDIA_TYPES.ociIndex, MEDIA_TYPES.dockerManifestList]);
const MANIFEST_TYPES = new Set<string>([MEDIA_TYPES.ociManifest, MEDIA_TYPES.dockerManifest]);

const descriptorSchema = z.object({
  mediaType: z.string().min(1),
  digest: z.string().refine(isDigest, 'not a digest (algorithm:hex)'),
  size: z.number().int().min(0),
  annotations: z.record(z.string(), z.string()).optional(),
  artifactType: z.string().optional(),
  platform: z
    .object({ architecture: z.string(), os: z.string(), variant: z.string().optional() })
    .loose()
    .optional(),
}).loose();
export type Descriptor = z.infer<typeof descriptorSchema>;

const imageManifestSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  artifactType: z.string().optional(),
  config: descriptorSchema,
  layers: z.array(descriptorSchema),
  annotations: z.record(z.string(), z.string()).optional(),
}).loose();
export type ImageManifest = z.infer<typeof imageManifestSchema>;

const imageIndexSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  manifests: z.array(descriptorSchema),
  annotations: z.record(z.string(), z.string()).optional(),
}).loose();
export type ImageIndex = z.infer<typeof imageIndexSchema>;

export type ParsedManifest = { kind: 'manifest'; manifest: ImageManifest } | { kind: 'index'; index: ImageIndex };

function issues(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
}

/**
 * Parses a manifest or index. The media type comes from the document, else from the response's
 * Content-Type; without either, the shape decides.
 */
export function parseManifest(bytes: Uint8Array, contentType: string | undefined, what: string): ParsedManifest {
  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (err) {
    throw new RegistryError('BAD_MANIFEST', `${what}: the manifest is not JSON`, { cause: err });
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new RegistryError('BAD_MANIFEST', `${what}: the manifest is not a JSON object`);
  const record = doc as Record<string, unknown>;
  const declared = typeof record.mediaType === 'string' ? record.mediaType : contentType?.split(';')[0]?.trim();
  if (record.schemaVersion === 1) {
    throw new RegistryError('BAD_MANIFEST', `${what}: Docker schema 1 manifests are not supported (push the artifact as an OCI manifest)`);
  }
  const isIndex = declared !== undefined && INDEX_TYPES.has(declared) ? true : declared !== undefined && MANIFEST_TYPES.has(declared) ? false : Array.isArray(record.manifests);
  if (isIndex) {
    const r = imageIndexSchema.safeParse(doc);
    if (!r.success) throw new RegistryError('BAD_MANIFEST', `${what}: not a valid image index: ${issues(r.error)}`, { cause: r.error });
    return { kind: 'index', index: r.data };
  }
  if (declared !== undefined && !MANIFEST_TYPES.has(declared) && !declared.includes('json')) {
    throw new RegistryError('BAD_MANIFEST', `${what}: unsupported manifest media type ${declared}`);
  }
  const r = imageManifestSchema.safeParse(doc);
  if (!r.success) throw new RegistryError('BAD_MANIFEST', `${what}: not a valid image manifest: ${issues(r.error)}`, { cause: r.error });
  return { kind: 'manifest', manifest: r.data };
}

/** The wasm layer of a manifest; NOT_WASM (naming what was found) for anything else. */
export function wasmLayerOf(manifest: ImageManifest, what: string): Descriptor {
  const types = manifest.layers.map((l) => l.mediaType);
  if (manifest.layers.length === 1 && types[0] === MEDIA_TYPES.wasmLayer) return manifest.layers[0]!;
  const found = types.length ? `${types.length} layer(s) of type ${[...new Set(types)].join(', ')}` : 'no layers';
  throw new RegistryError(
    'NOT_WASM',
    `${what} is not a wasm artifact: it has ${found} (config ${manifest.config.mediaType}); expected exactly one layer of type ${MEDIA_TYPES.wasmLayer}`,
  );
}

const WASM_OS = new Set(['wasi', 'wasip1', 'wasip2', 'wasm']);

/**
 * The entry of an index to follow: a `wasm` platform entry, else an entry whose artifactType is
 * the wasm config, else the only entry. NOT_WASM when none fits.
 */
export function wasmEntryOf(index: ImageIndex, what: string): Descriptor {
  const entries = index.manifests;
  const byPlatform = entries.find((d) => d.platform?.architecture === 'wasm' || (d.platform !== undefined && WASM_OS.has(d.platform.os)));
  if (byPlatform) return byPlatform;
  const byType = entries.find((d) => d.artifactType === MEDIA_TYPES.wasmConfig);
  if (byType) return byType;
  if (entries.length === 1) return entries[0]!;
  const platforms = entries.map((d) => (d.platform ? `${d.platform.os}/${d.platform.architecture}` : d.mediaType));
  throw new RegistryError('NOT_WASM', `${what} is an image index without a wasm entry (it lists ${platforms.join(', ') || 'nothing'})`);
}
