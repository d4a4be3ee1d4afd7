import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isLinkError } from '../errors.ts';
import type { KeyValueBackendFactory, KeyValueBackendRegistry } from './store.ts';
import { linkValue, redactUrl, selectBackend } from './store.ts';

function fake(name: string, urlSchemes: string[] = [], detect?: (v: Record<string, string>) => boolean): KeyValueBackendFactory {
  return {
    name,
    urlSchemes,
    detect,
    acquire: async () => {
      throw new Error('not used');
    },
    close: async () => {},
  };
}

const registry: KeyValueBackendRegistry = {
  memory: fake('memory'),
  redis: fake('redis', ['redis:', 'rediss:']),
  nats: fake('nats', ['nats:'], (v) => linkValue(v, 'NATS_URL') !== undefined),
};

test('selectBackend: no values → the default backend', () => {
  assert.equal(selectBackend({}, registry).name, 'memory');
  assert.equal(selectBackend({ BUCKET: 'b' }, registry).name, 'memory');
  assert.equal(selectBackend({}, registry, 'redis').name, 'redis');
});

test('selectBackend: URL scheme picks the backend', () => {
  assert.equal(selectBackend({ URL: 'redis://127.0.0.1:6380' }, registry).name, 'redis');
  assert.equal(selectBackend({ url: 'rediss://cache:6380/1' }, registry).name, 'redis');
  assert.equal(selectBackend({ URL: 'nats://127.0.0.1:4333' }, registry).name, 'nats');
});

test('selectBackend: detect() and explicit BACKEND', () => {
  assert.equal(selectBackend({ NATS_URL: 'nats://h:1', BUCKET: 'b' }, registry).name, 'nats');
  assert.equal(selectBackend({ BACKEND: 'memory', URL: 'redis://h' }, registry).name, 'memory');
  assert.equal(selectBackend({ backend: 'REDIS', URL: 'redis://h' }, registry).name, 'redis');
});

test('selectBackend: bad values are LinkErrors that say what is wrong', () => {
  assert.throws(() => selectBackend({ URL: 'ftp://x' }, registry), (e: Error) => isLinkError(e) && /unsupported URL scheme "ftp:"/.test(e.message) && /redis:/.test(e.message));
  assert.throws(() => selectBackend({ URL: 'not a url' }, registry), (e: Error) => isLinkError(e) && /not a valid URL/.test(e.message));
  assert.throws(() => selectBackend({ BACKEND: 'etcd' }, registry), (e: Error) => isLinkError(e) && /unknown key-value backend "etcd"/.test(e.message));
  assert.throws(() => selectBackend({}, registry, 'etcd'), (e: Error) => isLinkError(e) && /"etcd" is not registered/.test(e.message));
});

test('linkValue matches names case-insensitively and treats "" as absent', () => {
  assert.equal(linkValue({ url: 'x' }, 'URL'), 'x');
  assert.equal(linkValue({ URL: '' }, 'URL'), undefined);
  assert.equal(linkValue({}, 'URL'), undefined);
});

test('redactUrl hides passwords', () => {
  assert.equal(redactUrl('redis://user:secret@h:1/0'), 'redis://user:***@h:1/0');
  assert.ok(!redactUrl('redis://u:se cret@h').includes('se cret'));
});
