import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { resourceByPlural } from './resources.ts';
import { parseLabelSelector } from './selectors.ts';
import type { KubeObject, StoreEvent } from './types.ts';
import { filterEvent } from './watch.ts';

const pods = resourceByPlural('pods')!;
const pod = (labels: Record<string, string>, rv: string): KubeObject => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'ns', labels, resourceVersion: rv } });
const filter = { labels: parseLabelSelector('app=web'), fields: [] };

function ev(type: StoreEvent['type'], object: KubeObject, previous?: KubeObject, resource = 'pods'): StoreEvent {
  return { type, rv: Number(object.metadata.resourceVersion), resource, object, previous };
}

describe('filterEvent', () => {
  it('passes matching changes through', () => {
    assert.equal(filterEvent(pods, filter, ev('ADDED', pod({ app: 'web' }, '1')))?.type, 'ADDED');
    assert.equal(filterEvent(pods, filter, ev('MODIFIED', pod({ app: 'web', x: 'y' }, '2'), pod({ app: 'web' }, '1')))?.type, 'MODIFIED');
    assert.equal(filterEvent(pods, filter, ev('DELETED', pod({ app: 'web' }, '3'), pod({ app: 'web' }, '2')))?.type, 'DELETED');
  });

  it('turns entering the selection into ADDED and leaving it into DELETED', () => {
    const entered = filterEvent(pods, filter, ev('MODIFIED', pod({ app: 'web' }, '2'), pod({ app: 'db' }, '1')));
    assert.equal(entered?.type, 'ADDED');
    const left = filterEvent(pods, filter, ev('MODIFIED', pod({ app: 'db' }, '3'), pod({ app: 'web' }, '2')));
    assert.equal(left?.type, 'DELETED');
    const obj = left!.object as KubeObject;
    assert.equal(obj.metadata.labels!.app, 'web', 'the DELETED event carries the last matching state');
    assert.equal(obj.metadata.resourceVersion, '3', '… at the resource version of the change');
  });

  it('hides changes that never match, and other resources', () => {
    assert.equal(filterEvent(pods, filter, ev('ADDED', pod({ app: 'db' }, '1'))), undefined);
    assert.equal(filterEvent(pods, filter, ev('MODIFIED', pod({ app: 'db' }, '2'), pod({ app: 'db' }, '1'))), undefined);
    assert.equal(filterEvent(pods, filter, ev('DELETED', pod({ app: 'db' }, '2'), pod({ app: 'db' }, '1'))), undefined);
    assert.equal(filterEvent(pods, filter, ev('ADDED', pod({ app: 'web' }, '1'), undefined, 'configmaps')), undefined);
    assert.equal(filterEvent(pods, { ...filter, namespace: 'other' }, ev('ADDED', pod({ app: 'web' }, '1'))), undefined);
  });
});
