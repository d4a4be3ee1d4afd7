import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { isActorBuildError } from './errors.ts';
import { actorKeys } from './keys.ts';

describe('actor signing keys', () => {
  it('generates missing keys owner-only, then reuses them', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'wasmlet-keys-')), 'keys');
    const first = await actorKeys(dir, 'hello');
    assert.deepEqual(first.created.sort(), [join(dir, 'account.nk'), join(dir, 'hello_module.nk')]);
    assert.match(first.issuer, /^A[A-Z2-7]{55}$/);
    assert.match(first.subject, /^M[A-Z2-7]{55}$/);
    assert.equal(readFileSync(join(dir, 'account.nk'), 'utf8').trim(), first.accountSeed);
    assert.equal(statSync(join(dir, 'account.nk')).mode & 0o777, 0o600);
    assert.equal(statSync(join(dir, 'hello_module.nk')).mode & 0o777, 0o600);
    const again = await actorKeys(dir, 'hello');
    assert.deepEqual(again.created, []);
    assert.equal(again.subject, first.subject);
    const other = await actorKeys(dir, 'other');
    assert.equal(other.issuer, first.issuer, 'one issuer for the author');
    assert.notEqual(other.subject, first.subject, 'one identity per actor');
    assert.deepEqual(other.created, [join(dir, 'other_module.nk')]);
  });

  it('refuses a key file that holds no seed, or the wrong kind, without echoing it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wasmlet-keys-'));
    writeFileSync(join(dir, 'account.nk'), 'not a seed at all\n');
    await assert.rejects(actorKeys(dir, 'x'), (e) => isActorBuildError(e) && e.code === 'KEYS_INVALID' && /holds no nkey seed/.test(e.message) && !/not a seed at all/.test(e.message));
    const good = await actorKeys(mkdtempSync(join(tmpdir(), 'wasmlet-keys-')), 'y');
    writeFileSync(join(dir, 'account.nk'), `${good.moduleSeed}\n`);
    await assert.rejects(actorKeys(dir, 'x'), (e) => isActorBuildError(e) && /does not hold an account seed/.test(e.message) && !e.message.includes(good.moduleSeed));
  });
});
