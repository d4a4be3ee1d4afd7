import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseChallenge } from './auth.ts';
import { credentialsFromDockerConfigJson, findCredentials } from './credentials.ts';
import { isRegistryError } from '../errors.ts';

const b64 = (s: string) => Buffer.from(s).toString('base64');

test('a .dockerconfigjson yields one entry per registry, auth decoded', () => {
  const json = JSON.stringify({
    auths: {
      '127.0.0.1:5000': { auth: b64('alice:s3:cret') },
      'https://index.docker.io/v1/': { username: 'bob', password: 'pw', email: 'bob@example.com' },
      'ghcr.io': { identitytoken: 'refresh-token' },
    },
  });
  assert.deepEqual(credentialsFromDockerConfigJson(json), [
    { registry: '127.0.0.1:5000', auth: b64('alice:s3:cret'), username: 'alice', password: 's3:cret' },
    { registry: 'https://index.docker.io/v1/', username: 'bob', password: 'pw' },
    { registry: 'ghcr.io', identitytoken: 'refresh-token' },
  ]);
});

test('a legacy .dockercfg (no "auths" wrapper) is read too', () => {
  const json = JSON.stringify({ 'registry.example.com': { auth: b64('u:p'), email: 'x@y' } });
  assert.deepEqual(credentialsFromDockerConfigJson(json), [{ registry: 'registry.example.com', auth: b64('u:p'), username: 'u', password: 'p' }]);
});

test('unreadable docker configs are refused with BAD_CREDENTIALS and a reason', () => {
  const cases: Array<[string, RegExp]> = [
    [b64('{"auths":{}}'), /not JSON/],
    ['[]', /not a JSON object/],
    ['{"auths": 3}', /"auths" is not an object/],
    ['{"auths": {"r.io": "x"}}', /"r\.io" is not an object/],
    [JSON.stringify({ auths: { 'r.io': { auth: b64('no-colon') } } }), /not base64 of "username:password"/],
    [JSON.stringify({ auths: { 'r.io': { username: 7 } } }), /username must be a string/],
  ];
  for (const [json, why] of cases) {
    assert.throws(
      () => credentialsFromDockerConfigJson(json),
      (err: unknown) => isRegistryError(err) && err.code === 'BAD_CREDENTIALS' && why.test(err.message),
      json,
    );
  }
});

test('credentials are matched by host, Docker Hub spellings, wildcards and path prefixes, most specific first', () => {
  const all = [
    { registry: 'https://index.docker.io/v1/', username: 'hub', password: '1' },
    { registry: '*.example.com', username: 'wild', password: '2' },
    { registry: 'registry.example.com', username: 'exact', password: '3' },
    { registry: 'registry.example.com/team', username: 'team', password: '4' },
    { registry: 'http://127.0.0.1:5000', username: 'local', password: '5' },
  ];
  assert.equal(findCredentials(all, 'docker.io', 'library/nginx')?.username, 'hub');
  assert.equal(findCredentials(all, 'other.example.com', 'x')?.username, 'wild');
  assert.equal(findCredentials(all, 'a.b.example.com', 'x'), undefined, 'a wildcard matches one label only');
  assert.equal(findCredentials(all, 'registry.example.com', 'other/app')?.username, 'exact');
  assert.equal(findCredentials(all, 'registry.example.com', 'team/app')?.username, 'team');
  assert.equal(findCredentials(all, 'registry.example.com', 'teamwork/app')?.username, 'exact', 'a path prefix matches whole components');
  assert.equal(findCredentials(all, '127.0.0.1:5000', 'hello')?.username, 'local');
  assert.equal(findCredentials(all, '127.0.0.1:5001', 'hello'), undefined, 'the port is part of the host');
  assert.equal(findCredentials(undefined, 'docker.io', 'x'), undefined);
});

test('WWW-Authenticate challenges parse with quoted commas and escapes', () => {
  assert.deepEqual(parseChallenge('Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push"'), {
    scheme: 'bearer',
    params: { realm: 'https://auth.example.com/token', service: 'registry.example.com', scope: 'repository:a/b:pull,push' },
  });
  assert.deepEqual(parseChallenge('Basic realm="say \\"hi\\""'), { scheme: 'basic', params: { realm: 'say "hi"' } });
  assert.deepEqual(parseChallenge('Bearer realm=https://t/x, service=s'), { scheme: 'bearer', params: { realm: 'https://t/x', service: 's' } });
});
