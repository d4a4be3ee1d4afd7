import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseCapabilityAnnotations } from './annotations.ts';
import { isPodError } from './errors.ts';

const parse = (a: Record<string, string>, containers = ['app']) => parseCapabilityAnnotations(a, containers);
const refused = (a: Record<string, string>, pattern: RegExp, containers?: string[]) =>
  assert.throws(() => parse(a, containers), (err: unknown) => {
    assert.ok(isPodError(err));
    assert.equal(err.fatal, true);
    assert.equal(err.reason, 'InvalidCapabilityAnnotation');
    assert.match(err.message, pattern);
    return true;
  });

describe('capability annotations', () => {
  it('reads nothing from a pod without wasmlet annotations', () => {
    assert.deepEqual(parse({ 'other.io/x': 'y' }), []);
    assert.deepEqual(parseCapabilityAnnotations(undefined, []), []);
  });

  it('lists contracts by short name or id, with optional link names', () => {
    const links = parse({ 'wasmlet.dev/capabilities': 'keyvalue, wascc:logging httpserver@admin' });
    assert.deepEqual(
      links.map((l) => [l.contract, l.linkName]),
      [
        ['wasmlet:keyvalue', 'default'],
        ['wasmlet:logging', 'default'],
        ['wasmlet:httpserver', 'admin'],
      ],
    );
  });

  it('knows the short names messaging, httpclient and extras, with their values', () => {
    const links = parse({
      'wasmlet.dev/capabilities': 'extras',
      'wasmlet.dev/link.messaging.SUBSCRIPTION': 'orders.*',
      'wasmlet.dev/link.messaging.URL': 'nats://nats.default:4222',
      'wasmlet.dev/link.httpclient.ALLOWED_HOSTS': 'api.example.com',
    });
    const by = Object.fromEntries(links.map((l) => [`${l.contract}/${l.linkName}`, l.values]));
    assert.deepEqual(by, {
      'wasmlet:extras/default': {},
      'wasmlet:messaging/default': { SUBSCRIPTION: 'orders.*', URL: 'nats://nats.default:4222' },
      'wasmlet:httpclient/default': { ALLOWED_HOSTS: 'api.example.com' },
    });
  });

  it('takes per-link values and providers, which also ask for the link', () => {
    const links = parse({
      'wasmlet.dev/capabilities': 'acme:queue',
      'wasmlet.dev/link.keyvalue.URL': 'redis://r:6379',
      'wasmlet.dev/link.keyvalue.cache.URL': 'redis://c:6379',
      'wasmlet.dev/link.queue.TOPIC': 'jobs',
      'wasmlet.dev/provider.keyvalue.cache': 'VPROVIDER',
    });
    const by = Object.fromEntries(links.map((l) => [`${l.contract}/${l.linkName}`, l]));
    assert.deepEqual(by['wasmlet:keyvalue/default']?.values, { URL: 'redis://r:6379' });
    assert.deepEqual(by['wasmlet:keyvalue/cache']?.values, { URL: 'redis://c:6379' });
    assert.equal(by['wasmlet:keyvalue/cache']?.provider, 'VPROVIDER');
    assert.deepEqual(by['acme:queue/default']?.values, { TOPIC: 'jobs' });
  });

  it('reads the YAML (or JSON) links document, per container', () => {
    const links = parse(
      { 'wasmlet.dev/links': '[{"contract": "wascc:keyvalue", "values": {"URL": "x", "N": 3}, "container": "b"}]\n' },
      ['a', 'b'],
    );
    assert.deepEqual(links, [{ contract: 'wasmlet:keyvalue', linkName: 'default', values: { URL: 'x', N: '3' }, source: 'wasmlet.dev/links', container: 'b' }]);
  });

  it('refuses malformed annotations, naming the annotation', () => {
    refused({ 'wasmlet.dev/capabilities': 'not a contract!' }, /wasmlet\.dev\/capabilities/);
    refused({ 'wasmlet.dev/capabilities': ' , ' }, /lists no contract/);
    refused({ 'wasmlet.dev/capabilities': 'keyvalue keyvalue' }, /listed twice/);
    refused({ 'wasmlet.dev/link.keyvalue': 'x' }, /expected wasmlet\.dev\/link/);
    refused({ 'wasmlet.dev/link.queue.TOPIC': 'x' }, /unknown contract name "queue"/);
    refused({ 'wasmlet.dev/link.keyvalue.bad name.URL': 'x' }, /link name/);
    refused({ 'wasmlet.dev/provider.keyvalue': ' ' }, /names no provider/);
    refused({ 'wasmlet.dev/capabilites': 'keyvalue' }, /unknown wasmlet annotation/);
    refused({ 'wasmlet.dev/links': 'contract: [' }, /not YAML or JSON/);
    refused({ 'wasmlet.dev/links': 'contract: x' }, /must be a list/);
    refused({ 'wasmlet.dev/links': '- contract: keyvalue\n  colour: blue' }, /entry 0/);
    refused({ 'wasmlet.dev/links': '- contract: keyvalue\n  container: ghost' }, /no container named "ghost"/);
    refused({ 'wasmlet.dev/capabilities': 'keyvalue', 'wasmlet.dev/links': '- contract: wascc:keyvalue' }, /also defined/);
  });
});
