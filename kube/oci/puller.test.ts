import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { isOptionsError } from '../../host/index.ts';
import { startOciRegistry, type OciRegistry } from '../../test/helpers/oci-registry.ts';
import { RegistryClient } from './client.ts';
import { isRegistryError, type RegistryErrorCode } from '../errors.ts';
import { MEDIA_TYPES } from './manifest.ts';
import { createImagePuller, credentialsFromDockerConfigJson, type ImagePullerOptions } from './puller.ts';
import { pushWasm } from './pusher.ts';
import { startRegistryProxy } from './test-proxy.ts';

const fixtures = new URL('../shared/fixtures/', new URL('../../', import.meta.url));
const ECHO = new Uint8Array(readFileSync(new URL('wascc/echo.wasm', fixtures)));
const KVCOUNTER = new Uint8Array(readFileSync(new URL('wascc/kvcounter.wasm', fixtures)));
const sha256 = (b: Uint8Array) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const silent = pino({ level: 'silent' });

const dir = mkdtempSync(join(tmpdir(), 'wasmlet-puller-'));
let registry: OciRegistry;
before(async () => {
  registry = await startOciRegistry();
});
after(async () => {
  await registry?.stop();
  rmSync(dir, { recursive: true, force: true });
});

let cacheCount = 0;
function newCacheDir(): string {
  return join(dir, `cache-${++cacheCount}`);
}

function puller(options: Partial<ImagePullerOptions> & { cacheDir?: string } = {}) {
  return createImagePuller({ cacheDir: options.cacheDir ?? newCacheDir(), logger: silent, timeouts: { requestMs: 5000, blobMs: 10_000 }, ...options });
}

/** Every file under `root` (relative paths). */
function filesUnder(root: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    let names: string[];
    try {
      names = readdirSync(d);
    } catch {
      return;
    }
    for (const n of names) {
      const p = join(d, n);
      if (statSync(p).isDirectory()) walk(p);
      else out.push(p.slice(root.length + 1));
    }
  };
  walk(root);
  return out;
}

function rejectsWith(code: RegistryErrorCode, why?: RegExp) {
  return (err: unknown) => {
    assert.ok(isRegistryError(err), `expected a RegistryError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (why) assert.match(err.message, why);
    return true;
  };
}

function rawClient(host: string): RegistryClient {
  return new RegistryClient({ registry: host, requestTimeoutMs: 5000, blobTimeoutMs: 5000, maxManifestBytes: 1 << 20, maxBlobBytes: 1 << 26, logger: silent, userAgent: 'test' });
}

/** Pushes blobs and a hand-made manifest, bypassing pushWasm's own checks. */
async function pushRaw(host: string, repository: string, tag: string, manifest: unknown, blobs: Uint8Array[]): Promise<string> {
  const client = rawClient(host);
  for (const b of blobs) await client.uploadBlob(repository, b, sha256(b));
  return client.putManifest(repository, tag, new TextEncoder().encode(JSON.stringify(manifest)), MEDIA_TYPES.ociManifest);
}

test('push then pull: byte-exact, with the layer and manifest digests and the imageID', async () => {
  const pushed = await pushWasm(ECHO, `${registry.host}/round/echo:v1`, { annotations: { 'org.opencontainers.image.source': 'https://example.com/echo' } });
  assert.equal(pushed.layerDigest, sha256(ECHO));
  assert.equal(pushed.imageID, `${registry.host}/round/echo@${pushed.manifestDigest}`);

  // What the registry stores is the artifact we meant to publish.
  const res = await fetch(`${registry.url}/v2/round/echo/manifests/v1`, { headers: { accept: MEDIA_TYPES.ociManifest } });
  const raw = new Uint8Array(await res.arrayBuffer());
  assert.equal(sha256(raw), pushed.manifestDigest);
  const manifest = JSON.parse(new TextDecoder().decode(raw));
  assert.equal(manifest.config.mediaType, MEDIA_TYPES.wasmConfig);
  assert.deepEqual(manifest.layers.map((l: { mediaType: string }) => l.mediaType), [MEDIA_TYPES.wasmLayer]);
  assert.ok(!Number.isNaN(Date.parse(manifest.annotations['org.opencontainers.image.created'])));
  assert.equal(manifest.annotations['org.opencontainers.image.source'], 'https://example.com/echo');

  const pulled = await puller().pull(`${registry.host}/round/echo:v1`, { policy: 'Always' });
  assert.deepEqual(pulled.bytes, ECHO);
  assert.equal(pulled.digest, pushed.layerDigest);
  assert.equal(pulled.manifestDigest, pushed.manifestDigest);
  assert.equal(pulled.imageID, pushed.imageID);

  const byDigest = await puller().pull(`${registry.host}/round/echo@${pushed.manifestDigest}`, { policy: 'IfNotPresent' });
  assert.deepEqual(byDigest.bytes, ECHO);
  assert.equal(byDigest.imageID, pushed.imageID);
});

test('IfNotPresent and Never use the cache with the registry down; Always then fails UNREACHABLE', async () => {
  const reg = await startOciRegistry();
  try {
    const ref = `${reg.host}/offline/echo:v1`;
    const pushed = await pushWasm(ECHO, ref);
    const cacheDir = newCacheDir();
    await puller({ cacheDir }).pull(ref, { policy: 'IfNotPresent' });
    await reg.kill();

    // A new puller on the same cache dir: nothing in memory, no registry to ask.
    const offline = puller({ cacheDir });
    for (const policy of ['IfNotPresent', 'Never'] as const) {
      const hit = await offline.pull(ref, { policy });
      assert.deepEqual(hit.bytes, ECHO, policy);
      assert.equal(hit.manifestDigest, pushed.manifestDigest);
      assert.equal(hit.imageID, pushed.imageID);
    }
    const pinned = await offline.pull(`${reg.host}/offline/echo@${pushed.manifestDigest}`, { policy: 'Never' });
    assert.equal(pinned.digest, pushed.layerDigest);

    await assert.rejects(offline.pull(ref, { policy: 'Always' }), rejectsWith('UNREACHABLE', new RegExp(`cannot reach http://${reg.host.replace(/\./g, '\\.')}.*ECONNREFUSED`)));

    await reg.restart();
    const again = await offline.pull(ref, { policy: 'Always' });
    assert.deepEqual(again.bytes, ECHO);
  } finally {
    await reg.stop();
  }
});

test('Never without a cached image is NOT_CACHED and asks no registry', async () => {
  const proxy = await startRegistryProxy(registry.url);
  try {
    await pushWasm(ECHO, `${registry.host}/never/echo:v1`);
    await assert.rejects(
      puller().pull(`${proxy.host}/never/echo:v1`, { policy: 'Never' }),
      rejectsWith('NOT_CACHED', /not in the cache and the pull policy is Never/),
    );
    assert.deepEqual(proxy.counts, { manifests: 0, blobs: 0 });
  } finally {
    await proxy.close();
  }
});

test('Always re-resolves a moved tag and reuses cached blobs; IfNotPresent keeps what it has', async () => {
  const proxy = await startRegistryProxy(registry.url);
  try {
    const ref = `${proxy.host}/moving/app:v1`;
    const p = puller();
    await pushWasm(ECHO, `${registry.host}/moving/app:v1`);
    assert.deepEqual((await p.pull(ref, { policy: 'IfNotPresent' })).bytes, ECHO);
    assert.deepEqual(proxy.counts, { manifests: 1, blobs: 1 });

    await pushWasm(KVCOUNTER, `${registry.host}/moving/app:v1`);
    assert.deepEqual((await p.pull(ref, { policy: 'IfNotPresent' })).bytes, ECHO, 'IfNotPresent does not look again');
    assert.deepEqual(proxy.counts, { manifests: 1, blobs: 1 });

    const moved = await p.pull(ref, { policy: 'Always' });
    assert.deepEqual(moved.bytes, KVCOUNTER);
    assert.deepEqual(proxy.counts, { manifests: 2, blobs: 2 });
    assert.deepEqual((await p.pull(ref, { policy: 'IfNotPresent' })).bytes, KVCOUNTER, 'the cached tag now names the new manifest');

    // Always again: the manifest is fetched, the layer comes from the cache.
    assert.deepEqual((await p.pull(ref, { policy: 'Always' })).bytes, KVCOUNTER);
    assert.deepEqual(proxy.counts, { manifests: 3, blobs: 2 });
  } finally {
    await proxy.close();
  }
});

test('a blob corrupted in the registry is DIGEST_MISMATCH and nothing is cached', async () => {
  const ref = `${registry.host}/corrupt/echo:v1`;
  const pushed = await pushWasm(ECHO, ref);
  const path = registry.blobDataPath(pushed.layerDigest);
  const original = readFileSync(path);
  try {
    const garbage = Buffer.from(original);
    garbage[1000] = garbage[1000]! ^ 0xff;
    writeFileSync(path, garbage);
    const cacheDir = newCacheDir();
    await assert.rejects(puller({ cacheDir }).pull(ref, { policy: 'IfNotPresent' }), rejectsWith('DIGEST_MISMATCH', /content digest is sha256:[0-9a-f]{64}, expected/));
    assert.deepEqual(filesUnder(cacheDir), []);

    writeFileSync(path, Buffer.concat([original, Buffer.from('trailing')]));
    await assert.rejects(puller({ cacheDir }).pull(ref, { policy: 'Always' }), rejectsWith('DIGEST_MISMATCH', /more than the 1997059 bytes/));
    assert.deepEqual(filesUnder(cacheDir), []);
  } finally {
    writeFileSync(path, original);
  }
  assert.deepEqual((await puller().pull(ref, { policy: 'Always' })).bytes, ECHO, 'the repaired blob pulls again');
});

test('a blob tampered with on the wire is DIGEST_MISMATCH and nothing is cached', async () => {
  const proxy = await startRegistryProxy(registry.url);
  try {
    await pushWasm(ECHO, `${registry.host}/tamper/echo:v1`);
    proxy.blobMode = 'tamper';
    const cacheDir = newCacheDir();
    await assert.rejects(puller({ cacheDir }).pull(`${proxy.host}/tamper/echo:v1`, { policy: 'Always' }), rejectsWith('DIGEST_MISMATCH'));
    assert.deepEqual(filesUnder(cacheDir), []);
  } finally {
    await proxy.close();
  }
});

test('a cache file corrupted on disk is noticed on read: pulled again (IfNotPresent) or NOT_CACHED (Never)', async () => {
  const ref = `${registry.host}/diskrot/echo:v1`;
  const pushed = await pushWasm(ECHO, ref);
  const cacheDir = newCacheDir();
  await puller({ cacheDir }).pull(ref, { policy: 'IfNotPresent' });
  const cached = join(cacheDir, 'blobs', 'sha256', pushed.layerDigest.slice('sha256:'.length));
  const bytes = readFileSync(cached);
  bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 1;
  writeFileSync(cached, bytes);
  await assert.rejects(puller({ cacheDir }).pull(ref, { policy: 'Never' }), rejectsWith('NOT_CACHED'));

  writeFileSync(cached, bytes);
  const repaired = await puller({ cacheDir }).pull(ref, { policy: 'IfNotPresent' });
  assert.deepEqual(repaired.bytes, ECHO);
  assert.deepEqual(new Uint8Array(readFileSync(cached)), ECHO, 'the cache holds the right bytes again');
});

test('a container image is NOT_WASM and nothing is cached; a wasm layer with the OCI empty config is accepted', async () => {
  const config = new TextEncoder().encode('{"architecture":"amd64","os":"linux"}');
  const layer = new TextEncoder().encode('not really a tarball');
  await pushRaw(registry.host, 'notwasm/app', 'v1', {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.ociManifest,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256(layer), size: layer.length }],
  }, [config, layer]);
  const cacheDir = newCacheDir();
  await assert.rejects(
    puller({ cacheDir }).pull(`${registry.host}/notwasm/app:v1`, { policy: 'IfNotPresent' }),
    rejectsWith('NOT_WASM', /is not a wasm artifact: it has 1 layer\(s\) of type application\/vnd\.oci\.image\.layer\.v1\.tar\+gzip/),
  );
  assert.deepEqual(filesUnder(cacheDir), []);

  const empty = new TextEncoder().encode('{}');
  await pushRaw(registry.host, 'emptyconfig/app', 'v1', {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.ociManifest,
    artifactType: MEDIA_TYPES.wasmLayer,
    config: { mediaType: MEDIA_TYPES.ociEmpty, digest: sha256(empty), size: empty.length },
    layers: [{ mediaType: MEDIA_TYPES.wasmLayer, digest: sha256(KVCOUNTER), size: KVCOUNTER.length }],
  }, [empty, KVCOUNTER]);
  assert.deepEqual((await puller().pull(`${registry.host}/emptyconfig/app:v1`, { policy: 'Always' })).bytes, KVCOUNTER);
});

test('a wasm layer whose bytes are not WebAssembly is NOT_WASM', async () => {
  const config = new TextEncoder().encode('{}');
  const notWasm = new TextEncoder().encode('#!/bin/sh\necho hi\n');
  await pushRaw(registry.host, 'fakewasm/app', 'v1', {
    schemaVersion: 2,
    config: { mediaType: MEDIA_TYPES.wasmConfig, digest: sha256(config), size: config.length },
    layers: [{ mediaType: MEDIA_TYPES.wasmLayer, digest: sha256(notWasm), size: notWasm.length }],
  }, [config, notWasm]);
  await assert.rejects(puller().pull(`${registry.host}/fakewasm/app:v1`, { policy: 'Always' }), rejectsWith('NOT_WASM', /not a WebAssembly binary/));
});

test('an image index is followed to its wasm entry; the index digest is the image id', async () => {
  const pushed = await pushWasm(ECHO, `${registry.host}/indexed/echo:single`);
  const manifestSize = (await rawClient(registry.host).getManifest('indexed/echo', pushed.manifestDigest)).bytes.length;
  const index = new TextEncoder().encode(JSON.stringify({
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.ociIndex,
    manifests: [{ mediaType: MEDIA_TYPES.ociManifest, digest: pushed.manifestDigest, size: manifestSize, platform: { os: 'wasip1', architecture: 'wasm' } }],
  }));
  const indexDigest = await rawClient(registry.host).putManifest('indexed/echo', 'multi', index, MEDIA_TYPES.ociIndex);
  const cacheDir = newCacheDir();
  const pulled = await puller({ cacheDir }).pull(`${registry.host}/indexed/echo:multi`, { policy: 'IfNotPresent' });
  assert.deepEqual(pulled.bytes, ECHO);
  assert.equal(pulled.manifestDigest, indexDigest);
  assert.equal(pulled.imageID, `${registry.host}/indexed/echo@${indexDigest}`);
  const offline = await puller({ cacheDir }).pull(`${registry.host}/indexed/echo:multi`, { policy: 'Never' });
  assert.equal(offline.digest, pushed.layerDigest, 'the cached index leads to the cached layer');
});

test('missing tags and repositories are NOT_FOUND', async () => {
  await assert.rejects(puller().pull(`${registry.host}/nothing/here:v1`, { policy: 'Always' }), rejectsWith('NOT_FOUND', /not found \((MANIFEST|NAME)_UNKNOWN/));
});

test('concurrent pulls of one reference share one download; an aborted caller does not cancel the others', async () => {
  const proxy = await startRegistryProxy(registry.url);
  try {
    await pushWasm(KVCOUNTER, `${registry.host}/shared/kv:v1`);
    const p = puller();
    proxy.blobMode = 'stall';
    const ref = `${proxy.host}/shared/kv:v1`;
    const quitter = new AbortController();
    const pulls = [p.pull(ref, { policy: 'IfNotPresent', signal: quitter.signal }), ...Array.from({ length: 4 }, () => p.pull(ref, { policy: 'IfNotPresent' }))];
    while (proxy.counts.blobs === 0) await new Promise((r) => setTimeout(r, 10));
    quitter.abort(new Error('pod deleted'));
    await assert.rejects(pulls[0]!, rejectsWith('ABORTED', /pull of .*shared\/kv:v1: aborted/));
    proxy.release();
    const results = await Promise.all(pulls.slice(1));
    for (const r of results) assert.deepEqual(r.bytes, KVCOUNTER);
    assert.equal(proxy.counts.blobs, 1);
    assert.equal(proxy.counts.manifests, 1);
  } finally {
    await proxy.close();
  }
});

test('a stalled blob fails UNREACHABLE after the blob timeout; a sole aborted caller stops the download', async () => {
  const proxy = await startRegistryProxy(registry.url);
  try {
    await pushWasm(ECHO, `${registry.host}/stall/echo:v1`);
    proxy.blobMode = 'stall';
    const cacheDir = newCacheDir();
    const slow = puller({ cacheDir, timeouts: { requestMs: 5000, blobMs: 300 } });
    const started = Date.now();
    await assert.rejects(slow.pull(`${proxy.host}/stall/echo:v1`, { policy: 'Always' }), rejectsWith('UNREACHABLE', /no complete answer within 300 ms/));
    assert.ok(Date.now() - started < 4000);

    const controller = new AbortController();
    const pending = puller({ cacheDir }).pull(`${proxy.host}/stall/echo:v1`, { policy: 'Always', signal: controller.signal });
    while (proxy.counts.blobs < 2) await new Promise((r) => setTimeout(r, 10));
    controller.abort();
    await assert.rejects(pending, rejectsWith('ABORTED'));
    assert.deepEqual(filesUnder(cacheDir), []);
  } finally {
    await proxy.close();
  }
});

test('a basic-auth registry: credentials from a dockerconfigjson work, wrong or missing ones are UNAUTHORIZED', async () => {
  const secured = await startOciRegistry({ users: [{ username: 'alice', password: 'correct horse' }] });
  try {
    const ref = `${secured.host}/private/echo:v1`;
    const good = credentialsFromDockerConfigJson(JSON.stringify({ auths: { [secured.host]: { auth: Buffer.from('alice:correct horse').toString('base64') } } }));
    await pushWasm(ECHO, ref, { credentials: good });
    const pulled = await puller().pull(ref, { policy: 'Always', credentials: good });
    assert.deepEqual(pulled.bytes, ECHO);

    const wrong = credentialsFromDockerConfigJson(JSON.stringify({ auths: { [`http://${secured.host}`]: { username: 'alice', password: 'battery staple' } } }));
    await assert.rejects(puller().pull(ref, { policy: 'Always', credentials: wrong }), rejectsWith('UNAUTHORIZED', /refused the credentials for .* \(user alice\)/));
    await assert.rejects(puller().pull(ref, { policy: 'Always' }), rejectsWith('UNAUTHORIZED', /requires a user name and password/));
    const elsewhere = [{ registry: 'other.example.com', username: 'alice', password: 'correct horse' }];
    await assert.rejects(puller().pull(ref, { policy: 'Always', credentials: elsewhere }), rejectsWith('UNAUTHORIZED'), 'credentials for another registry are not sent');
  } finally {
    await secured.stop();
  }
});

test('a bearer-token registry: token flow with user/password and with an identity token; refusals are UNAUTHORIZED', async () => {
  const secured = await startOciRegistry({ tokenAuth: { users: [{ username: 'bob', password: 'pw' }], identityTokens: ['refresh-123'] } });
  try {
    const ref = `${secured.host}/team/echo:v1`;
    await assert.rejects(pushWasm(ECHO, ref), rejectsWith('UNAUTHORIZED', /refused anonymous access to repository:team\/echo:pull,push/));
    const pushed = await pushWasm(ECHO, ref, { credentials: [{ registry: secured.host, username: 'bob', password: 'pw' }] });
    const issuedBefore = secured.tokenServer!.issued;
    const pulled = await puller().pull(ref, { policy: 'Always', credentials: [{ registry: secured.host, identitytoken: 'refresh-123' }] });
    assert.deepEqual(pulled.bytes, ECHO);
    assert.equal(pulled.manifestDigest, pushed.manifestDigest);
    assert.equal(secured.tokenServer!.issued, issuedBefore + 1, 'one token serves the manifest and the blob');

    await assert.rejects(
      puller().pull(ref, { policy: 'Always', credentials: [{ registry: secured.host, username: 'bob', password: 'nope' }] }),
      rejectsWith('UNAUTHORIZED', /token server http:\/\/127\.0\.0\.1:\d+ refused the credentials/),
    );
    await assert.rejects(puller().pull(ref, { policy: 'Always' }), rejectsWith('UNAUTHORIZED', /refused anonymous access to repository:team\/echo:pull/));
  } finally {
    await secured.stop();
  }
});

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const a = server.address();
  return `127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`;
}

test('credentials never follow a redirect to another origin (blobs served from a "CDN")', async () => {
  const pushed = await pushWasm(ECHO, `${registry.host}/cdn/echo:v1`);
  const cdnSaw: Array<string | undefined> = [];
  const cdn = createServer((req, res) => {
    cdnSaw.push(req.headers.authorization);
    fetch(`${registry.url}/v2/cdn/echo/blobs/${pushed.layerDigest}`)
      .then(async (r) => res.writeHead(200).end(Buffer.from(await r.arrayBuffer())))
      .catch(() => res.writeHead(502).end());
  });
  const cdnHost = await listen(cdn);
  const auth = `Basic ${Buffer.from('dave:pw').toString('base64')}`;
  const front = createServer((req, res) => {
    if (req.headers.authorization !== auth) return void res.writeHead(401, { 'www-authenticate': 'Basic realm="front"' }).end();
    if (req.url?.includes('/blobs/')) return void res.writeHead(307, { location: `http://${cdnHost}/blob?sig=abc` }).end();
    fetch(`${registry.url}${req.url}`, { headers: { accept: req.headers.accept ?? '' } })
      .then(async (r) => res.writeHead(r.status, { 'content-type': r.headers.get('content-type') ?? '' }).end(Buffer.from(await r.arrayBuffer())))
      .catch(() => res.writeHead(502).end());
  });
  const frontHost = await listen(front);
  try {
    const pulled = await puller().pull(`${frontHost}/cdn/echo:v1`, { policy: 'Always', credentials: [{ registry: frontHost, username: 'dave', password: 'pw' }] });
    assert.deepEqual(pulled.bytes, ECHO);
    assert.deepEqual(cdnSaw, [undefined], 'the CDN was asked once, without the registry credentials');
  } finally {
    cdn.closeAllConnections();
    front.closeAllConnections();
    await Promise.all([new Promise((r) => cdn.close(r)), new Promise((r) => front.close(r))]);
  }
});

test('local files: refused without allowLocalFiles, read and digested with it', async () => {
  const file = join(dir, 'local echo.wasm');
  writeFileSync(file, ECHO);
  const url = new URL(`file://${file}`).href;
  await assert.rejects(puller().pull(url, { policy: 'IfNotPresent' }), rejectsWith('LOCAL_FILES_DISABLED', /allowLocalFiles: true/));

  const local = puller({ allowLocalFiles: true });
  const pulled = await local.pull(url, { policy: 'IfNotPresent' });
  assert.deepEqual(pulled.bytes, ECHO);
  assert.equal(pulled.digest, sha256(ECHO));
  assert.equal(pulled.imageID, `${url}@${sha256(ECHO)}`);

  writeFileSync(join(dir, 'script.wasm'), '#!/bin/sh\n');
  await assert.rejects(local.pull(new URL(`file://${join(dir, 'script.wasm')}`).href, { policy: 'IfNotPresent' }), rejectsWith('NOT_WASM'));
  await assert.rejects(local.pull(`file://${join(dir, 'absent.wasm')}`, { policy: 'IfNotPresent' }), rejectsWith('LOCAL_FILE', /ENOENT/));
  await assert.rejects(local.pull('file://elsewhere/x.wasm', { policy: 'IfNotPresent' }), rejectsWith('BAD_REFERENCE', /file:\/\/\/absolute/));
});

test('bad input is refused before any network: references, policies, options', async () => {
  await assert.rejects(puller().pull('Not A Ref', { policy: 'Always' }), rejectsWith('BAD_REFERENCE'));
  await assert.rejects(puller().pull(`${registry.host}/x:v1`, { policy: 'Sometimes' as 'Always' }), (err: unknown) => isOptionsError(err) && /policy/.test((err as Error).message));
  assert.throws(() => createImagePuller({ cacheDir: '' }), (err: unknown) => isOptionsError(err) && /cacheDir/.test((err as Error).message));
  assert.throws(() => createImagePuller({ cacheDir: dir, timeouts: { requestMs: -1 } }), (err: unknown) => isOptionsError(err) && /timeouts\.requestMs/.test((err as Error).message));
});

test('plain HTTP only for loopback and listed registries', () => {
  const client = (registry: string, insecureRegistries: string[] = []) =>
    new RegistryClient({ registry, insecureRegistries, requestTimeoutMs: 1, blobTimeoutMs: 1, maxManifestBytes: 1, maxBlobBytes: 1, logger: silent, userAgent: 't' }).baseUrl.href;
  assert.equal(client('127.0.0.1:5000'), 'http://127.0.0.1:5000/');
  assert.equal(client('localhost:5000'), 'http://localhost:5000/');
  assert.equal(client('[::1]:5000'), 'http://[::1]:5000/');
  assert.equal(client('10.0.0.7:5000'), 'https://10.0.0.7:5000/');
  assert.equal(client('10.0.0.7:5000', ['10.0.0.7:5000']), 'http://10.0.0.7:5000/');
  assert.equal(client('10.0.0.7:5000', ['10.0.0.7']), 'http://10.0.0.7:5000/');
  assert.equal(client('10.0.0.7:5000', ['10.0.0.7:6000']), 'https://10.0.0.7:5000/');
  assert.equal(client('docker.io'), 'https://registry-1.docker.io/');
});
