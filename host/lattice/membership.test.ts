import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { generateKeyPair } from '../claims/keys.ts';
import { isLatticeAuthError } from '../errors.ts';
import { initIssuer, loadIssuer } from './issuer.ts';
import { issuerKey, LatticeTrust, memberHostId, mintMemberCredentials, parseMemberCredentials, verifyMemberToken } from './membership.ts';
import { natsServerConfig, rolePermissions } from './nats-config.ts';
import { NonceCache } from './replay.ts';
import { openRecord, sealRecord } from './signed-record.ts';
import { signMessage, verifyMessage } from './signed-message.ts';
import { latticeBucket, latticeScope, subjectPrefix } from './subjects.ts';
import { TestIssuer } from './test-support.ts';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'wasmlet-lattice-'));
  dirs.push(d);
  return d;
}

const code = (c: string) => (err: unknown) => isLatticeAuthError(err) && err.code === c;

test('lattice init writes the issuer 0600 (never over an existing one); creds are minted from it and name lattice, role and expiry', async () => {
  const dir = join(await tempDir(), 'issuer');
  const issuer = await initIssuer(dir, 'prod');
  assert.match(issuer.issuer, /^A/);
  for (const f of ['issuer.nk', 'operator.nk', 'system.nk']) assert.equal((await stat(join(dir, f))).mode & 0o777, 0o600, f);
  assert.equal((await stat(dir)).mode & 0o777, 0o700);
  await assert.rejects(initIssuer(dir, 'prod'), code('LATTICE_ISSUER_EXISTS'));
  const loaded = await loadIssuer(join(dir, 'issuer.nk'));
  assert.equal(loaded.issuer, issuer.issuer);
  assert.equal(loaded.lattice, 'prod');
  const creds = await mintMemberCredentials(loaded, { role: 'provider', name: 'kv-1', expiresInSeconds: 3600 });
  assert.equal(creds.lattice, 'prod');
  assert.equal(creds.role, 'provider');
  assert.equal(creds.name, 'kv-1');
  assert.equal(creds.issuer, issuer.issuer);
  assert.ok(creds.expires! > Date.now() + 3_500_000 && creds.expires! <= Date.now() + 3_600_000);
  assert.equal(creds.hostId, memberHostId(creds.key));
  // A standard NATS creds file: the JWT block, then the seed block.
  const text = new TextDecoder().decode(creds.creds);
  assert.match(text, /-----BEGIN NATS USER JWT-----\n[\w-]+\.[\w-]+\.[\w-]+\n------END NATS USER JWT------/);
  assert.match(text, /-----BEGIN USER NKEY SEED-----\nSU[A-Z2-7]+\n------END USER NKEY SEED------/);
  assert.equal(parseMemberCredentials(creds.creds).key, creds.key);
  // A wrong issuer file, a missing lattice.json, a seed that is not an account's.
  const other = await tempDir();
  await writeFile(join(other, 'issuer.nk'), generateKeyPair('account').seed);
  await assert.rejects(loadIssuer(join(other, 'issuer.nk')), (e) => code('LATTICE_ISSUER_UNREADABLE')(e) && /lattice\.json/.test((e as Error).message));
  await writeFile(join(other, 'lattice.json'), await readFile(join(dir, 'lattice.json')));
  await assert.rejects(loadIssuer(join(other, 'issuer.nk')), (e) => code('LATTICE_ISSUER_UNREADABLE')(e) && /is not the issuer/.test((e as Error).message));
  await writeFile(join(other, 'issuer.nk'), generateKeyPair('user').seed);
  await assert.rejects(loadIssuer(join(other, 'issuer.nk')), (e) => code('LATTICE_ISSUER_UNREADABLE')(e) && /account nkey seed/.test((e as Error).message));
  await assert.rejects(mintMemberCredentials(loaded, { role: 'admin' as never }), code('LATTICE_CREDS_INVALID'));
});

test('creds files that are not usable are refused with the reason, never echoing the seed', async () => {
  const issuer = TestIssuer.create('prod');
  const good = await issuer.creds('host');
  const text = new TextDecoder().decode(good.creds);
  const bad = (t: string, pattern: RegExp) => assert.throws(() => parseMemberCredentials(new TextEncoder().encode(t)), (e) => code('LATTICE_CREDS_INVALID')(e) && pattern.test((e as Error).message) && !(e as Error).message.includes(good.seed));
  bad('', /a JWT block and a seed block/);
  bad(text.replace(good.seed, generateKeyPair('account').seed), /user nkey seed/);
  bad(text.replace(good.seed, generateKeyPair('user').seed), /the seed is for .*, the JWT for/);
  const other = await issuer.creds('host');
  bad(text.replace(good.token, other.token), /the seed is for/);
  const [h, p, s] = good.token.split('.') as [string, string, string];
  bad(text.replace(good.token, `${h}.${p}.${s.slice(0, -4)}AAAA`), /not signed by this lattice's issuer/);
  bad(text.replace(good.token, 'garbage'), /not a JWT|names no account issuer/);
  assert.throws(() => parseMemberCredentials(new Uint8Array(40_000)), code('LATTICE_CREDS_INVALID'));
});

test('member tokens: role and lattice tags, expiry and not-before, and the trust cache', async () => {
  const issuer = TestIssuer.create('prod');
  const key = issuerKey(issuer.issuer);
  const ctl = await issuer.creds('ctl', { expiresInSeconds: 10 });
  const m = verifyMemberToken(ctl.token, key, 'prod');
  assert.equal(m.role, 'ctl');
  assert.throws(() => verifyMemberToken(ctl.token, key, 'staging'), (e) => code('MEMBER_REFUSED')(e) && /lattice "prod", not staging/.test((e as Error).message));
  assert.throws(() => verifyMemberToken(ctl.token, key, 'prod', Date.now() + 11_000), (e) => code('MEMBER_REFUSED')(e) && /expired/.test((e as Error).message));
  assert.throws(() => verifyMemberToken('a.b', key, 'prod'), code('MEMBER_FORGED'));
  assert.throws(() => verifyMemberToken('x'.repeat(8193), key, 'prod'), code('MEMBER_FORGED'));
  // The trust caches a verified credential, checks expiry at every use, and knows its host id.
  const trust = await issuer.trust('host');
  assert.equal(trust.member(ctl.token).key, ctl.key);
  assert.equal(trust.known(ctl.hostId)?.role, 'ctl');
  assert.equal(trust.known(ctl.hostId, Date.now() + 11_000), undefined);
  assert.throws(() => trust.member(ctl.token, Date.now() + 11_000), code('MEMBER_REFUSED'));
  assert.equal(trust.scope, latticeScope(issuer.issuer));
  assert.equal(trust.prefix, subjectPrefix('prod', trust.scope));
  assert.match(trust.prefix, /^wasmlet\.prod\.i[0-9a-f]{16}$/);
  assert.equal(LatticeTrust.insecure('prod').prefix, 'wasmlet.prod.open');
  assert.throws(() => LatticeTrust.insecure('prod').member(ctl.token), code('MEMBER_REFUSED'));
});

test('signed messages: credential, role, subject, reply subject, freshness and nonce are all checked', async () => {
  const issuer = TestIssuer.create('prod');
  const [ctl, host, provider] = [await issuer.trust('ctl'), await issuer.trust('host'), await issuer.trust('provider')];
  const payload = new TextEncoder().encode('{"actor":"M"}');
  const subject = `${host.prefix}.ctl.actor.stop`;
  const headers = signMessage(ctl, subject, '_INBOX.r', payload)!;
  const msg = (over: Partial<{ subject: string; reply: string; data: Uint8Array; headers: typeof headers }> = {}) => ({ subject, reply: '_INBOX.r', data: payload, headers, ...over });
  const opts = () => ({ roles: ['ctl'] as const, nonces: new NonceCache(), freshnessMs: 60_000 });
  assert.equal(verifyMessage(host, msg(), opts())?.role, 'ctl');
  const nonces = new NonceCache();
  verifyMessage(host, msg(), { ...opts(), nonces });
  assert.throws(() => verifyMessage(host, msg(), { ...opts(), nonces }), (e) => code('MESSAGE_REFUSED')(e) && /replayed/.test((e as Error).message));
  assert.throws(() => verifyMessage(host, msg({ subject: `${host.prefix}.ctl.host.NOTHER.actor.stop` }), opts()), /signature does not verify/);
  assert.throws(() => verifyMessage(host, msg({ reply: '_INBOX.other' }), opts()), /signature does not verify/);
  assert.throws(() => verifyMessage(host, msg({ data: new TextEncoder().encode('{"actor":"X"}') }), opts()), /signature does not verify/);
  assert.throws(() => verifyMessage(host, msg({ headers: undefined }), opts()), /unsigned message/);
  assert.throws(() => verifyMessage(host, msg(), { ...opts(), now: Date.now() + 120_000 }), /stale, replayed or clocks apart/);
  const fromProvider = signMessage(provider, subject, '_INBOX.r', payload)!;
  assert.throws(() => verifyMessage(host, msg({ headers: fromProvider }), opts()), (e) => code('MEMBER_REFUSED')(e) && /a provider .* may not send this/.test((e as Error).message));
  const stranger = await TestIssuer.create('prod').trust('ctl');
  assert.throws(() => verifyMessage(host, msg({ headers: signMessage(stranger, subject, '_INBOX.r', payload)! }), opts()), code('MEMBER_FORGED'));
  // Open lattices sign and check nothing.
  assert.equal(signMessage(LatticeTrust.insecure('prod'), subject, undefined, payload), undefined);
  assert.equal(verifyMessage(LatticeTrust.insecure('prod'), msg({ headers: undefined }), opts()), undefined);
});

test('signed records: writer role, bucket and key binding, tampering; deletions are records', async () => {
  const issuer = TestIssuer.create('prod');
  const [ctl, host, provider] = [await issuer.trust('ctl'), await issuer.trust('host'), await issuer.trust('provider')];
  const bucket = latticeBucket('prod', host.scope, 'links');
  const link = { actor: 'M', contract: 'wasmlet:keyvalue', linkName: 'default', values: { URL: 'redis://127.0.0.1' } };
  const rec = sealRecord(ctl, bucket, 'M.k.d', link);
  const opened = openRecord(host, bucket, 'M.k.d', rec, ['ctl', 'host']);
  assert.deepEqual(opened.body, link);
  assert.equal(opened.by?.role, 'ctl');
  assert.throws(() => openRecord(host, bucket, 'M.k.other', rec, ['ctl', 'host']), /signature does not verify/);
  assert.throws(() => openRecord(host, latticeBucket('prod', host.scope, 'claims'), 'M.k.d', rec, ['ctl', 'host']), /signature does not verify/);
  assert.throws(() => openRecord(host, bucket, 'M.k.d', sealRecord(provider, bucket, 'M.k.d', link), ['ctl', 'host']), (e) => code('MEMBER_REFUSED')(e) && /a provider .* may not write/.test((e as Error).message));
  assert.throws(() => openRecord(host, bucket, 'M.k.d', new TextEncoder().encode(JSON.stringify(link)), ['ctl', 'host']), /unsigned record/);
  const text = new TextDecoder().decode(rec).replace('redis://127.0.0.1', 'redis://evil.example');
  assert.throws(() => openRecord(host, bucket, 'M.k.d', new TextEncoder().encode(text), ['ctl', 'host']), /signature does not verify/);
  assert.equal(openRecord(host, bucket, 'M.k.d', sealRecord(ctl, bucket, 'M.k.d', null), ['ctl']).body, null);
  assert.throws(() => openRecord(host, bucket, 'M.k.d', new Uint8Array(300_000), ['ctl']), /at most/);
});

test('nats-config: operator mode with the lattice account preloaded; creds carry per-role subject permissions', async () => {
  const dir = join(await tempDir(), 'i');
  const issuer = await initIssuer(dir, 'prod');
  const config = await natsServerConfig({ ...issuer, listen: '127.0.0.1:4999', storeDir: '/tmp/js' });
  assert.match(config, /^listen: "127\.0\.0\.1:4999"$/m);
  assert.match(config, /^operator: eyJ/m);
  assert.match(config, new RegExp(`^  ${issuer.issuer}: eyJ`, 'm'));
  assert.match(config, /^resolver: MEMORY$/m);
  const P = subjectPrefix('prod', latticeScope(issuer.issuer));
  assert.deepEqual(rolePermissions('ctl', 'prod', latticeScope(issuer.issuer)).sub.allow, [`${P}.evt.>`, '_INBOX.>']);
  assert.ok(!rolePermissions('provider', 'prod', latticeScope(issuer.issuer)).pub.allow.some((s) => s.includes('.ctl.')), 'providers publish no control request');
  assert.ok(!rolePermissions('host', 'prod', latticeScope(issuer.issuer)).pub.allow.some((s) => s.includes('.ctl.')), 'hosts publish no control request');
  assert.ok(rolePermissions('provider', 'prod', latticeScope(issuer.issuer)).sub.allow.includes(`${P}.rpc.provider.>`));
  assert.ok(!rolePermissions('provider', 'prod', latticeScope(issuer.issuer)).sub.allow.includes(`${P}.rpc.>`), "providers cannot join actors' queue groups");
});
