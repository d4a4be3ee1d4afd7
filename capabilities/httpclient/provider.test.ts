import assert from 'node:assert/strict';
import { test } from 'node:test';
import { canonicalContract, HTTP_CLIENT, isOptionsError } from '../../host/index.ts';
import { directHarness } from '../harness.ts';
import { hostAllowed, parseAllowedHosts } from './allowed-hosts.ts';
import { runHttpClientConformance } from './conformance.ts';
import { HttpClientProvider } from './provider.ts';

runHttpClientConformance('in-process', () => directHarness(new HttpClientProvider({ timeoutMs: 5000 })));

test('serves wasmlet:httpclient and its waSCC and wasmCloud aliases', () => {
  assert.equal(new HttpClientProvider().contract, HTTP_CLIENT);
  assert.equal(canonicalContract('wascc:http_client'), HTTP_CLIENT);
  assert.equal(canonicalContract('wasmcloud:httpclient'), HTTP_CLIENT);
});

test('ALLOWED_HOSTS patterns: exact host, host:port, *.suffix, IPv6, *', () => {
  const p = parseAllowedHosts('127.0.0.1:8080, *.Example.com [::1] api.test');
  const allowed = (u: string) => hostAllowed(p, new URL(u));
  assert.equal(allowed('http://127.0.0.1:8080/'), true);
  assert.equal(allowed('http://127.0.0.1/'), false, 'port 80 is not 8080');
  assert.equal(allowed('http://a.b.example.com/'), true);
  assert.equal(allowed('http://example.com/'), false, '*.suffix does not match the suffix itself');
  assert.equal(allowed('http://badexample.com/'), false);
  assert.equal(allowed('http://[::1]:9/'), true);
  assert.equal(allowed('https://API.test/'), true);
  assert.equal(allowed('https://api.test.evil/'), false);
  assert.equal(hostAllowed(parseAllowedHosts('*'), new URL('http://anything:1/')), true);
  assert.equal(hostAllowed(parseAllowedHosts(''), new URL('http://127.0.0.1/')), false);
  assert.equal(hostAllowed(parseAllowedHosts('api.test:443'), new URL('https://api.test/')), true, 'the default port counts');
  for (const bad of ['::1', 'a*b', '127.0.0.1:0', 'x:abc', '*.', 'a/b']) assert.throws(() => parseAllowedHosts(bad), /ALLOWED_HOSTS/, bad);
});

test('options are validated', () => {
  assert.throws(() => new HttpClientProvider({ timeoutMs: -1 }), (e: unknown) => isOptionsError(e) && /timeoutMs/.test(e.message));
  assert.throws(() => new HttpClientProvider({ nope: 1 } as never), isOptionsError);
});
