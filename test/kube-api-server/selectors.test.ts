import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isApiError } from './api-error.ts';
import { resourceByPlural } from './resources.ts';
import { matchesFields, matchesLabels, parseFieldSelector, parseLabelSelector } from './selectors.ts';
import type { KubeObject } from './types.ts';

const pods = resourceByPlural('pods')!;
const events = resourceByPlural('events')!;

function pod(name: string, nodeName?: string, phase = 'Running'): KubeObject {
  return { apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'default' }, spec: nodeName ? { nodeName } : {}, status: { phase } };
}

function selects(selector: string, labels: Record<string, string>): boolean {
  return matchesLabels(parseLabelSelector(selector), labels);
}

describe('label selectors', () => {
  it('matches equality, inequality and set operators like the real server', () => {
    const labels = { app: 'web', tier: 'front', 'example.com/team': 'a' };
    assert.equal(selects('app=web', labels), true);
    assert.equal(selects('app==web', labels), true);
    assert.equal(selects('app=db', labels), false);
    assert.equal(selects('app!=db', labels), true);
    assert.equal(selects('missing!=x', labels), true, '!= also selects objects without the label');
    assert.equal(selects('app in (db, web)', labels), true);
    assert.equal(selects('app notin (db,web)', labels), false);
    assert.equal(selects('missing notin (x)', labels), true);
    assert.equal(selects('example.com/team', labels), true);
    assert.equal(selects('!example.com/team', labels), false);
    assert.equal(selects('!gone', labels), true);
    assert.equal(selects('app=web,tier=back', labels), false);
    assert.equal(selects(' app = web , tier in (front) ', labels), true);
    assert.equal(selects('', {}), true);
  });

  it('supports empty values and numeric comparisons', () => {
    assert.equal(selects('a=', { a: '' }), true);
    assert.equal(selects('a=', { a: 'x' }), false);
    assert.equal(selects('n>3', { n: '5' }), true);
    assert.equal(selects('n<3', { n: '5' }), false);
    assert.equal(selects('n>3', { n: 'x' }), false);
  });

  it('rejects malformed selectors with 400 BadRequest', () => {
    for (const bad of ['app in (', 'app in ()', '=x', 'app=web,', 'app = a b', 'bad key!=x y', 'app>x', 'app=' + 'v'.repeat(64), '-bad=x']) {
      assert.throws(
        () => parseLabelSelector(bad),
        (err) => isApiError(err) && err.code === 400 && err.reason === 'BadRequest',
        `expected ${JSON.stringify(bad)} to be rejected`,
      );
    }
  });
});

describe('field selectors', () => {
  it('matches supported pod fields, with missing fields as the empty string', () => {
    const sel = parseFieldSelector('spec.nodeName=node-1', pods);
    assert.equal(matchesFields(sel, pods, pod('a', 'node-1')), true);
    assert.equal(matchesFields(sel, pods, pod('b', 'node-2')), false);
    assert.equal(matchesFields(parseFieldSelector('spec.nodeName=', pods), pods, pod('c')), true);
    assert.equal(matchesFields(parseFieldSelector('status.phase!=Running,metadata.name==a', pods), pods, pod('a')), false);
    assert.equal(matchesFields(parseFieldSelector('metadata.namespace=default', pods), pods, pod('a')), true);
  });

  it('supports involvedObject fields on events', () => {
    const ev: KubeObject = { apiVersion: 'v1', kind: 'Event', metadata: { name: 'e', namespace: 'default' }, involvedObject: { kind: 'Pod', name: 'x', uid: 'u1' }, reason: 'Started' };
    assert.equal(matchesFields(parseFieldSelector('involvedObject.name=x,involvedObject.kind=Pod,reason=Started', events), events, ev), true);
    assert.equal(matchesFields(parseFieldSelector('involvedObject.uid=u2', events), events, ev), false);
  });

  it('unescapes values', () => {
    const sel = parseFieldSelector('metadata.name=a\\,b\\=c', pods);
    assert.deepEqual(sel, [{ key: 'metadata.name', operator: '=', value: 'a,b=c' }]);
  });

  it('rejects unsupported fields and malformed terms with 400', () => {
    assert.throws(() => parseFieldSelector('spec.nodeName=x', events), (e) => isApiError(e) && e.code === 400 && /field label not supported: spec.nodeName/.test(e.message));
    assert.throws(() => parseFieldSelector('nonsense', pods), (e) => isApiError(e) && e.code === 400);
    assert.throws(() => parseFieldSelector('=x', pods), (e) => isApiError(e) && e.code === 400);
  });
});
