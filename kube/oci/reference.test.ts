import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isRegistryError } from '../errors.ts';
import { formatImageReference, imageIdFor, manifestReference, parseImageReference, registryEndpoint } from './reference.ts';

const DIGEST = `sha256:${'ab'.repeat(32)}`;

test('Docker Hub short names get docker.io and the library/ prefix, and the latest tag', () => {
  for (const ref of ['nginx', 'docker.io/nginx', 'index.docker.io/nginx', 'docker.io/library/nginx:latest']) {
    assert.deepEqual(parseImageReference(ref), { registry: 'docker.io', repository: 'library/nginx', tag: 'latest', digest: undefined }, ref);
  }
  assert.deepEqual(parseImageReference('team/app:1.2'), { registry: 'docker.io', repository: 'team/app', tag: '1.2', digest: undefined });
  assert.equal(registryEndpoint('docker.io'), 'registry-1.docker.io');
  assert.equal(registryEndpoint('ghcr.io'), 'ghcr.io');
});

test('host:port, localhost, IPv6 and dotted hosts are registries; no library/ prefix there', () => {
  assert.deepEqual(parseImageReference('127.0.0.1:5000/hello:v1'), { registry: '127.0.0.1:5000', repository: 'hello', tag: 'v1', digest: undefined });
  assert.deepEqual(parseImageReference('localhost/hello'), { registry: 'localhost', repository: 'hello', tag: 'latest', digest: undefined });
  assert.deepEqual(parseImageReference('[::1]:5000/a/b'), { registry: '[::1]:5000', repository: 'a/b', tag: 'latest', digest: undefined });
  assert.deepEqual(parseImageReference('Registry.Example.com/team/app'), { registry: 'registry.example.com', repository: 'team/app', tag: 'latest', digest: undefined });
});

test('digests pin the manifest; with a tag too, the digest decides', () => {
  const pinned = parseImageReference(`ghcr.io/o/app@${DIGEST}`);
  assert.deepEqual(pinned, { registry: 'ghcr.io', repository: 'o/app', tag: undefined, digest: DIGEST });
  assert.equal(manifestReference(pinned), DIGEST);
  const both = parseImageReference(`ghcr.io/o/app:v2@${DIGEST}`);
  assert.equal(both.tag, 'v2');
  assert.equal(manifestReference(both), DIGEST);
  assert.equal(formatImageReference(both), `ghcr.io/o/app:v2@${DIGEST}`);
  assert.equal(imageIdFor(both, DIGEST), `ghcr.io/o/app@${DIGEST}`);
  assert.equal(formatImageReference(parseImageReference('nginx')), 'docker.io/library/nginx:latest');
});

test('bad references are refused with BAD_REFERENCE and say why', () => {
  const cases: Array<[string, RegExp]> = [
    ['', /empty/],
    ['Hello/World', /lower case/],
    ['hello world', /white space/],
    ['http://127.0.0.1:5000/x', /without a scheme/],
    ['127.0.0.1:5000/x@sha256:1234', /not a digest/],
    ['127.0.0.1:5000/x@md5:' + 'a'.repeat(32), /not a digest/],
    ['x:-bad', /not a valid tag/],
    ['127.0.0.1:5000/', /repository name is missing/],
    ['127.0.0.1:99999/x', /registry host/],
    ['a//b', /empty component/],
    ['a/-b', /path component/],
    [`r.io/${'a'.repeat(260)}`, /longer than 255/],
  ];
  for (const [ref, why] of cases) {
    assert.throws(
      () => parseImageReference(ref),
      (err: unknown) => isRegistryError(err) && err.code === 'BAD_REFERENCE' && why.test(err.message),
      `${JSON.stringify(ref)} should be refused (${why})`,
    );
  }
});
