import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isRegistryError } from '../errors.ts';
import { MEDIA_TYPES, parseManifest, wasmEntryOf, wasmLayerOf } from './manifest.ts';

const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;
const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));

function manifest(config: string, layers: string[]) {
  return {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.ociManifest,
    config: { mediaType: config, digest: D1, size: 2 },
    layers: layers.map((mediaType) => ({ mediaType, digest: D2, size: 10 })),
  };
}

function code(c: string, why?: RegExp) {
  return (err: unknown) => isRegistryError(err) && err.code === c && (!why || why.test(err.message));
}

test('a wasm artifact: strict on the layer, lenient on the config', () => {
  for (const config of [MEDIA_TYPES.wasmConfig, MEDIA_TYPES.ociEmpty, 'application/vnd.unknown.config.v1+json']) {
    const parsed = parseManifest(enc(manifest(config, [MEDIA_TYPES.wasmLayer])), undefined, 'm');
    assert.equal(parsed.kind, 'manifest');
    if (parsed.kind !== 'manifest') return;
    assert.equal(wasmLayerOf(parsed.manifest, 'm').digest, D2, config);
  }
  const container = parseManifest(enc(manifest('application/vnd.oci.image.config.v1+json', ['application/vnd.oci.image.layer.v1.tar+gzip'])), undefined, 'img');
  assert.ok(container.kind === 'manifest');
  assert.throws(() => wasmLayerOf(container.manifest, 'img'), code('NOT_WASM', /img is not a wasm artifact: it has 1 layer\(s\) of type application\/vnd\.oci\.image\.layer\.v1\.tar\+gzip/));
  const two = parseManifest(enc(manifest(MEDIA_TYPES.wasmConfig, [MEDIA_TYPES.wasmLayer, MEDIA_TYPES.wasmLayer])), undefined, 'two');
  assert.ok(two.kind === 'manifest');
  assert.throws(() => wasmLayerOf(two.manifest, 'two'), code('NOT_WASM', /2 layer/));
});

test('malformed manifests are BAD_MANIFEST with the reason', () => {
  assert.throws(() => parseManifest(new TextEncoder().encode('{nope'), undefined, 'm'), code('BAD_MANIFEST', /not JSON/));
  assert.throws(() => parseManifest(enc([1]), undefined, 'm'), code('BAD_MANIFEST', /not a JSON object/));
  assert.throws(() => parseManifest(enc({ schemaVersion: 1, fsLayers: [] }), undefined, 'm'), code('BAD_MANIFEST', /schema 1/));
  const badDigest = manifest(MEDIA_TYPES.wasmConfig, [MEDIA_TYPES.wasmLayer]);
  badDigest.layers[0]!.digest = 'sha256:xyz';
  assert.throws(() => parseManifest(enc(badDigest), undefined, 'm'), code('BAD_MANIFEST', /layers\.0\.digest/));
});

test('an index resolves to its wasm entry, by platform, artifact type, or being the only one', () => {
  const entry = (platform?: { os: string; architecture: string }, artifactType?: string) => ({
    mediaType: MEDIA_TYPES.ociManifest,
    digest: platform?.architecture === 'wasm' || artifactType ? D2 : D1,
    size: 100,
    ...(platform ? { platform } : {}),
    ...(artifactType ? { artifactType } : {}),
  });
  const parse = (manifests: unknown[]) => {
    const p = parseManifest(enc({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests }), undefined, 'idx');
    assert.equal(p.kind, 'index');
    if (p.kind !== 'index') throw new Error('unreachable');
    return p.index;
  };
  assert.equal(wasmEntryOf(parse([entry({ os: 'linux', architecture: 'amd64' }), entry({ os: 'wasip1', architecture: 'wasm' })]), 'idx').digest, D2);
  assert.equal(wasmEntryOf(parse([entry({ os: 'linux', architecture: 'amd64' }), entry(undefined, MEDIA_TYPES.wasmConfig)]), 'idx').digest, D2);
  assert.equal(wasmEntryOf(parse([entry()]), 'idx').digest, D1);
  assert.throws(
    () => wasmEntryOf(parse([entry({ os: 'linux', architecture: 'amd64' }), entry({ os: 'linux', architecture: 'arm64' })]), 'idx'),
    code('NOT_WASM', /linux\/amd64, linux\/arm64/),
  );
});
