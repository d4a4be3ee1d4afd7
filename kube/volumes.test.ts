import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import type { V1Pod } from '@kubernetes/client-node';
import type { ConfigSource } from './env.ts';
import { isPodError } from './errors.ts';
import { preopensFor, prepareVolumes } from './volumes.ts';

const source: ConfigSource = {
  configMap: async (_ns, name) => (name === 'cm' ? { data: { a: 'A', 'nested.txt': 'N' }, binaryData: { bin: Buffer.from([1, 2]).toString('base64') } } : undefined),
  secret: async (_ns, name) => (name === 's' ? { data: { pw: Buffer.from('pw!').toString('base64') } } : undefined),
};
const placement = { nodeName: 'n', nodeAddress: '10.0.0.1' };
const logger = pino({ level: 'silent' });
const pod = (volumes: NonNullable<V1Pod['spec']>['volumes']): V1Pod => ({ metadata: { name: 'p', namespace: 'ns' }, spec: { containers: [], volumes } });

describe('pod volumes', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'wasmlet-volumes-'));
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  it('writes ConfigMap (with binaryData), Secret, downward API files and makes emptyDirs', async () => {
    const dirs = await prepareVolumes(
      pod([
        { name: 'c', configMap: { name: 'cm' } },
        { name: 's', secret: { secretName: 's', defaultMode: 0o400 } },
        { name: 'e', emptyDir: {} },
        { name: 'd', downwardAPI: { items: [{ path: 'sub/name', fieldRef: { fieldPath: 'metadata.name' } }] } },
      ]),
      join(dir, 'p1'),
      source,
      placement,
      { allowHostPath: true, logger },
    );
    assert.equal(await readFile(join(dirs.get('c')!, 'a'), 'utf8'), 'A');
    assert.deepEqual([...(await readFile(join(dirs.get('c')!, 'bin')))], [1, 2]);
    assert.equal(await readFile(join(dirs.get('s')!, 'pw'), 'utf8'), 'pw!');
    assert.equal((await stat(join(dirs.get('s')!, 'pw'))).mode & 0o777, 0o400);
    assert.ok((await stat(dirs.get('e')!)).isDirectory());
    assert.equal(await readFile(join(dirs.get('d')!, 'sub', 'name'), 'utf8'), 'p');
    const pre = await preopensFor({ name: 'app', volumeMounts: [{ name: 'c', mountPath: '/etc/c' }, { name: 'e', mountPath: '/scratch', subPath: 'x' }] }, dirs);
    assert.deepEqual(pre, { '/etc/c': dirs.get('c'), '/scratch': join(dirs.get('e')!, 'x') });
  });

  it('refuses paths that leave the volume, unknown volume types, files as hostPath, and missing required sources', async () => {
    const fatal = (e: unknown) => isPodError(e) && e.fatal;
    await assert.rejects(prepareVolumes(pod([{ name: 'c', configMap: { name: 'cm', items: [{ key: 'a', path: '../escape' }] } }]), join(dir, 'p2'), source, placement, { allowHostPath: true, logger }), fatal);
    await assert.rejects(prepareVolumes(pod([{ name: 'n', nfs: { server: 'x', path: '/' } }]), join(dir, 'p3'), source, placement, { allowHostPath: true, logger }), /not supported/);
    await assert.rejects(prepareVolumes(pod([{ name: 'h', hostPath: { path: '/etc/hostname', type: 'File' } }]), join(dir, 'p4'), source, placement, { allowHostPath: true, logger }), /only directories/);
    await assert.rejects(prepareVolumes(pod([{ name: 'h', hostPath: { path: dir } }]), join(dir, 'p5'), source, placement, { allowHostPath: false, logger }), /not allowed/);
    await assert.rejects(prepareVolumes(pod([{ name: 'c', configMap: { name: 'gone' } }]), join(dir, 'p6'), source, placement, { allowHostPath: true, logger }), (e: unknown) => isPodError(e) && !e.fatal && e.reason === 'CreateContainerConfigError');
    const optional = await prepareVolumes(pod([{ name: 'c', configMap: { name: 'gone', optional: true } }]), join(dir, 'p7'), source, placement, { allowHostPath: true, logger });
    assert.ok((await stat(optional.get('c')!)).isDirectory());
    await assert.rejects(preopensFor({ name: 'app', volumeMounts: [{ name: 'ghost', mountPath: '/x' }] }, new Map()), /names no volume/);
  });
});
