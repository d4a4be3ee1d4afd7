import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, stat, symlink } from 'node:fs/promises';
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
    await assert.rejects(prepareVolumes(pod([{ name: 'h', hostPath: { path: dir } }]), join(dir, 'p5'), source, placement, { allowHostPath: false, logger }), /hostPath volumes are off on this node/);
    await assert.rejects(prepareVolumes(pod([{ name: 'c', configMap: { name: 'gone' } }]), join(dir, 'p6'), source, placement, { allowHostPath: true, logger }), (e: unknown) => isPodError(e) && !e.fatal && e.reason === 'CreateContainerConfigError');
    const optional = await prepareVolumes(pod([{ name: 'c', configMap: { name: 'gone', optional: true } }]), join(dir, 'p7'), source, placement, { allowHostPath: true, logger });
    assert.ok((await stat(optional.get('c')!)).isDirectory());
    await assert.rejects(preopensFor({ name: 'app', volumeMounts: [{ name: 'ghost', mountPath: '/x' }] }, new Map()), /names no volume/);
  });
});

describe('hostPath volumes', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'wasmlet-hostpath-'));
    await mkdir(join(dir, 'allowed', 'sub'), { recursive: true });
    await mkdir(join(dir, 'allowed-not'), { recursive: true });
    await mkdir(join(dir, 'other'), { recursive: true });
    await symlink(join(dir, 'other'), join(dir, 'allowed', 'link'));
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  const volumes = (path: string) => pod([{ name: 'h', hostPath: { path } }]);
  const refused = (pattern: RegExp) => (e: unknown) => {
    assert.ok(isPodError(e), String(e));
    assert.equal(e.reason, 'UnsupportedPodSpec');
    assert.ok(e.fatal);
    assert.match(e.message, pattern);
    return true;
  };

  it('are off by default: the pod fails with UnsupportedPodSpec and a message that says how to allow them', async () => {
    const { parseNodeAgentOptions } = await import('./options.ts');
    assert.equal(parseNodeAgentOptions({ nodeName: 'n' }).allowHostPath, false);
    await assert.rejects(prepareVolumes(volumes(join(dir, 'allowed')), join(dir, 'p1'), source, placement, { allowHostPath: false, logger }), refused(/hostPath volumes are off on this node.*--allow-host-path/));
  });

  it('with prefixes: allowed under them only, after `..` and symbolic links are resolved, by whole path segments', async () => {
    const allow = [join(dir, 'allowed')];
    const ok = await prepareVolumes(volumes(join(dir, 'allowed', 'sub')), join(dir, 'p2'), source, placement, { allowHostPath: allow, logger });
    assert.equal(ok.get('h'), join(dir, 'allowed', 'sub'));
    assert.equal((await prepareVolumes(volumes(join(dir, 'allowed')), join(dir, 'p3'), source, placement, { allowHostPath: allow, logger })).get('h'), join(dir, 'allowed'));
    const outside = /outside the directories this node allows.*--allow-host-path <prefix>/;
    // `..` climbs out of the prefix.
    await assert.rejects(prepareVolumes(volumes(`${join(dir, 'allowed')}/../other`), join(dir, 'p4'), source, placement, { allowHostPath: allow, logger }), refused(outside));
    await assert.rejects(prepareVolumes(volumes('/etc'), join(dir, 'p5'), source, placement, { allowHostPath: allow, logger }), refused(outside));
    // A sibling whose name starts with the prefix is not under it.
    await assert.rejects(prepareVolumes(volumes(join(dir, 'allowed-not')), join(dir, 'p6'), source, placement, { allowHostPath: allow, logger }), refused(outside));
    // A symbolic link inside the prefix that leads out of it.
    await assert.rejects(prepareVolumes(volumes(join(dir, 'allowed', 'link')), join(dir, 'p7'), source, placement, { allowHostPath: allow, logger }), refused(outside));
    // DirectoryOrCreate never creates a directory outside the prefix.
    await assert.rejects(
      prepareVolumes(pod([{ name: 'h', hostPath: { path: join(dir, 'allowed', '..', 'made'), type: 'DirectoryOrCreate' } }]), join(dir, 'p8'), source, placement, { allowHostPath: allow, logger }),
      refused(outside),
    );
    await assert.rejects(stat(join(dir, 'made')), /ENOENT/);
    // true: any directory.
    assert.equal((await prepareVolumes(volumes(join(dir, 'other')), join(dir, 'p9'), source, placement, { allowHostPath: true, logger })).get('h'), join(dir, 'other'));
  });
});
