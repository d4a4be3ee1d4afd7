import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { computeModuleHash, inspectActor, readClaims, signActor, verifyActor, type SignActorOptions } from './claims.ts';
import { decodeJwt, encodeJwt } from './jwt.ts';
import { generateKeyPair, signingKey } from './keys.ts';
import { appendCustomSection, customSection, listCustomSections, parseWasmLayout, stripCustomSections } from './wasm-sections.ts';

const fixtures = new URL('../shared/fixtures/', new URL('../../', import.meta.url));
/** A private copy: fixture files are read-only and tests change bytes. */
const fixture = (name: string) => new Uint8Array(readFileSync(new URL(`wascc/${name}`, fixtures)));

const ISSUER = 'AAGRUXXTGSP4C27RWPTMCHCJF56JD53EQPA2R7RPC5VI4E274KPRMMJ5';
const FIXTURES = [
  {
    file: 'echo.wasm',
    subject: 'MB4OLDIC3TCZ4Q4TGGOVAZC43VXFE2JQVRAXQMQFXUCREOOFEKOKZTY2',
    name: 'Echo Actor',
    caps: ['wascc:http_server'],
    hash: '5FCFF41C3E1A3EE89E10C23EFCCC17E08AFEF2CDC04F77364F108DBBA5480816',
  },
  {
    file: 'kvcounter.wasm',
    subject: 'MASCXFM4R6X63UD5MSCDZYCJNPBVSIU6RKMXUPXRKAOSBQ6UY3VT3NPZ',
    name: 'Key Value Counter',
    caps: ['wascc:keyvalue', 'wascc:http_server'],
    hash: '4B4BCE3588955E068DC9D32382C8727CBF46819C907AB3A1630ED7B97C530D13',
  },
];

/** `(module)`: the smallest valid module. */
const EMPTY_MODULE = Uint8Array.from([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);
/** `(module (type (func)))` plus a custom section, so a byte can be changed outside `jwt`. */
const SMALL_MODULE = appendCustomSection(
  Uint8Array.from([...EMPTY_MODULE, 0x01, 0x04, 0x01, 0x60, 0x00, 0x00]),
  'note',
  'kept as is',
);
const EMPTY_COMPONENT = Uint8Array.from([0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00]);

const account = generateKeyPair('account');
const module = generateKeyPair('module');
const NOW = 1_700_000_000;

function sign(bytes: Uint8Array, extra: Partial<SignActorOptions> = {}) {
  return signActor(bytes, { account: account.seed, module: module.seed, name: 'Test Actor', caps: ['wasmlet:keyvalue'], now: NOW, ...extra });
}

/** Replaces the token of a signed binary. */
function withToken(bytes: Uint8Array, token: string): Uint8Array {
  return appendCustomSection(stripCustomSections(bytes, ['jwt']), 'jwt', token);
}

function assertRefused(fn: () => unknown, code: string, ...patterns: RegExp[]): void {
  assert.throws(fn, (err: Error & { code?: string }) => {
    assert.equal(err.name, 'ClaimsError');
    assert.equal(err.code, code);
    for (const p of patterns) assert.match(err.message, p);
    return true;
  });
}

for (const f of FIXTURES) {
  test(`the waSCC fixture ${f.file} verifies with the subject, issuer, caps and hash of the fixtures README`, () => {
    const bytes = fixture(f.file);
    assert.equal(computeModuleHash(bytes), f.hash);
    const actor = verifyActor(bytes, { issuers: [ISSUER] });
    assert.equal(actor.subject, f.subject);
    assert.equal(actor.issuer, ISSUER);
    assert.equal(actor.hash, f.hash);
    assert.equal(actor.claims.wascap.hash, f.hash);
    assert.equal(actor.claims.wascap.name, f.name);
    assert.deepEqual(actor.claims.wascap.caps, f.caps);
    assert.equal(actor.token, new TextDecoder().decode(customSection(bytes, 'jwt')));
  });
}

test('the module hash leaves out the jwt section but covers every other byte', () => {
  const echo = fixture('echo.wasm');
  const jwt = listCustomSections(echo).find((s) => s.name === 'jwt')!;
  const expected = createHash('sha256').update(echo.subarray(0, jwt.start)).digest('hex').toUpperCase();
  assert.equal(computeModuleHash(echo), expected);
  const changed = echo.slice();
  changed[100] = changed[100]! ^ 0xff;
  assert.notEqual(computeModuleHash(changed), expected);
});

test('reads claims from a wasmcloud_jwt section when there is no jwt section', () => {
  const echo = fixture('echo.wasm');
  const token = new TextDecoder().decode(customSection(echo, 'jwt'));
  const legacy = appendCustomSection(stripCustomSections(echo, ['jwt']), 'wasmcloud_jwt', token);
  const read = readClaims(legacy);
  assert.equal(read.section, 'wasmcloud_jwt');
  assert.equal(read.token, token);
  assert.equal(verifyActor(legacy).subject, FIXTURES[0]!.subject);
});

test('refuses an unsigned module', () => {
  assertRefused(() => verifyActor(EMPTY_MODULE), 'CLAIMS_MISSING', /^actor refused: not signed/, /"jwt"/);
  assertRefused(() => readClaims(SMALL_MODULE), 'CLAIMS_MISSING', /not signed/);
});

test('refuses a module changed after signing: one byte outside the jwt section', () => {
  const signed = sign(SMALL_MODULE).bytes;
  assert.equal(verifyActor(signed, { now: NOW }).subject, module.publicKey);
  const note = listCustomSections(signed).find((s) => s.name === 'note')!;
  const changed = signed.slice();
  changed[note.dataStart] = changed[note.dataStart]! ^ 0x01;
  assertRefused(
    () => verifyActor(changed, { now: NOW }),
    'CLAIMS_HASH',
    new RegExp(`^actor ${module.publicKey} \\("Test Actor"\\) refused: module hash mismatch`),
    new RegExp(`claims say ${computeModuleHash(signed)}, module is ${computeModuleHash(changed)}`),
    /the module was changed after signing/,
  );
});

test('refuses a real waSCC actor whose code was patched', () => {
  const echo = fixture('echo.wasm');
  const code = parseWasmLayout(echo).sections.find((s) => s.id === 10)!.payloadStart + 10; // inside the code section
  echo[code] = echo[code]! ^ 0x01;
  assertRefused(() => verifyActor(echo), 'CLAIMS_HASH', /MB4OLDIC3TCZ4Q4TGGOVAZC43VXFE2JQVRAXQMQFXUCREOOFEKOKZTY2/, /module hash mismatch/);
});

test('refuses a token signed by a key other than its issuer', () => {
  const signed = sign(SMALL_MODULE);
  const other = generateKeyPair('account');
  const forged = withToken(signed.bytes, encodeJwt(signed.claims, other.seed)); // iss still names `account`
  assertRefused(() => verifyActor(forged, { now: NOW }), 'CLAIMS_SIGNATURE', /signature does not verify with the issuer's key/, /not signed by its issuer/);
});

test("refuses a real actor whose claims were widened under the original signature", () => {
  const echo = fixture('echo.wasm');
  const [header, , signature] = readClaims(echo).token.split('.');
  const claims = readClaims(echo).claims;
  const widened = { ...claims, wascap: { ...claims.wascap, caps: [...claims.wascap.caps!, 'wascc:keyvalue'] } };
  const token = `${header}.${Buffer.from(JSON.stringify(widened)).toString('base64url')}.${signature}`;
  assertRefused(() => verifyActor(withToken(echo, token)), 'CLAIMS_SIGNATURE', /signature does not verify/);
});

test('refuses expired claims, unless within the allowed clock skew', () => {
  const signed = sign(SMALL_MODULE, { expiresAt: NOW + 60 }).bytes;
  assert.ok(verifyActor(signed, { now: NOW + 59 }));
  assertRefused(
    () => verifyActor(signed, { now: NOW + 3600 }),
    'CLAIMS_EXPIRED',
    /refused: claims expired at 2023-11-14T22:14:20.000Z \(now 2023-11-14T23:13:20.000Z\)/,
  );
  assert.ok(verifyActor(signed, { now: NOW + 3600, clockSkewSeconds: 3600 }));
});

test('refuses claims that are not valid yet', () => {
  const signed = sign(SMALL_MODULE, { notBefore: NOW + 600 }).bytes;
  assertRefused(() => verifyActor(signed, { now: NOW }), 'CLAIMS_NOT_YET_VALID', /not valid before 2023-11-14T22:23:20.000Z/);
  assert.ok(verifyActor(signed, { now: NOW + 600 }));
  assert.ok(verifyActor(signed, { now: NOW, clockSkewSeconds: 600 }));
});

test('refuses an issuer outside the allow-list; an empty list allows any', () => {
  const signed = sign(SMALL_MODULE).bytes;
  const other = generateKeyPair('account').publicKey;
  assertRefused(
    () => verifyActor(signed, { now: NOW, issuers: [other, ISSUER] }),
    'CLAIMS_ISSUER_NOT_ALLOWED',
    new RegExp(`issuer ${account.publicKey} is not in the allowed issuers \\(${other}, ${ISSUER}\\)`),
  );
  assert.equal(verifyActor(signed, { now: NOW, issuers: [ISSUER, account.publicKey] }).issuer, account.publicKey);
  assert.equal(verifyActor(signed, { now: NOW, issuers: [] }).issuer, account.publicKey);
  assertRefused(() => verifyActor(fixture('echo.wasm'), { issuers: [account.publicKey] }), 'CLAIMS_ISSUER_NOT_ALLOWED', /not in the allowed issuers/);
});

test('refuses claims whose issuer is not an account key or whose subject is not a module key', () => {
  const signed = sign(SMALL_MODULE);
  const badIss = withToken(signed.bytes, encodeJwt({ ...signed.claims, iss: module.publicKey }, account.seed));
  assertRefused(() => verifyActor(badIss, { now: NOW }), 'CLAIMS_MALFORMED', /issuer "M\w+" is not a valid account key/);
  const badSub = withToken(signed.bytes, encodeJwt({ ...signed.claims, sub: account.publicKey }, account.seed));
  assertRefused(() => verifyActor(badSub, { now: NOW }), 'CLAIMS_MALFORMED', /subject "A\w+" is not a valid module key/);
});

test('refuses malformed tokens and binaries with the reason', () => {
  assertRefused(() => verifyActor(appendCustomSection(SMALL_MODULE, 'jwt', 'garbage')), 'CLAIMS_MALFORMED', /expected 3 dot-separated segments/);
  const signed = sign(SMALL_MODULE);
  const noHash = { ...signed.claims, wascap: { ...signed.claims.wascap, hash: undefined } };
  assertRefused(() => verifyActor(withToken(signed.bytes, encodeJwt(noHash, account.seed))), 'CLAIMS_MALFORMED', /malformed claims: wascap\.hash/);
  const [, body, sig] = signed.token.split('.');
  const none = `${Buffer.from('{"typ":"jwt","alg":"none"}').toString('base64url')}.${body}.${sig}`;
  assertRefused(() => verifyActor(withToken(signed.bytes, none)), 'CLAIMS_MALFORMED', /only Ed25519 is accepted/);
  assertRefused(() => verifyActor(new TextEncoder().encode('not wasm at all')), 'CLAIMS_MALFORMED', /^actor refused: malformed WebAssembly binary: .*magic/);
  assertRefused(() => verifyActor(signed.bytes.subarray(0, signed.bytes.length - 5)), 'CLAIMS_MALFORMED', /past the end/);
});

test('sign then verify a module: claims as asked, a fresh jti, the input left unchanged', () => {
  const input = SMALL_MODULE.slice();
  const signed = sign(input, { tags: ['demo'], rev: 3, ver: '1.2.0', caps: ['wascc:keyvalue', 'wascc:logging'] });
  assert.deepEqual(input, SMALL_MODULE);
  assert.ok(WebAssembly.validate(signed.bytes));
  const actor = verifyActor(signed.bytes, { now: NOW, issuers: [account.publicKey] });
  assert.equal(actor.subject, module.publicKey);
  assert.equal(actor.issuer, account.publicKey);
  assert.equal(actor.claims.iat, NOW);
  assert.deepEqual(actor.claims.wascap, {
    name: 'Test Actor',
    hash: computeModuleHash(SMALL_MODULE),
    tags: ['demo'],
    caps: ['wascc:keyvalue', 'wascc:logging'],
    rev: 3,
    ver: '1.2.0',
    prov: false,
  });
  assert.equal(decodeJwt(actor.token).header.alg, 'Ed25519');
  assert.match(actor.claims.jti, /^[A-Za-z0-9_-]{22}$/);
  assert.notEqual(sign(input).claims.jti, actor.claims.jti);
  // The other bytes are the input's, followed by the jwt section.
  assert.deepEqual(signed.bytes.subarray(0, SMALL_MODULE.length), SMALL_MODULE);
});

test('re-signing replaces existing jwt and wasmcloud_jwt sections', () => {
  const echo = fixture('echo.wasm');
  const withLegacy = appendCustomSection(echo, 'wasmcloud_jwt', readClaims(echo).token);
  const resigned = sign(withLegacy, { name: 'Echo, re-signed' });
  const names = listCustomSections(resigned.bytes).map((s) => s.name);
  assert.equal(names.filter((n) => n === 'jwt').length, 1);
  assert.ok(!names.includes('wasmcloud_jwt'));
  const actor = verifyActor(resigned.bytes, { now: NOW });
  assert.equal(actor.hash, FIXTURES[0]!.hash, 'same code, same hash');
  assert.equal(actor.issuer, account.publicKey);
  assert.equal(actor.claims.wascap.name, 'Echo, re-signed');
});

test('sign then verify a component (the section sits at its top level)', () => {
  const signed = sign(EMPTY_COMPONENT);
  assert.deepEqual(signed.bytes.subarray(0, 8), EMPTY_COMPONENT);
  const actor = verifyActor(signed.bytes, { now: NOW });
  assert.equal(actor.hash, createHash('sha256').update(EMPTY_COMPONENT).digest('hex').toUpperCase());
  assert.equal(actor.subject, module.publicKey);
});

test('without a module seed, signing makes a new module identity each time', () => {
  const a = signActor(EMPTY_MODULE, { account: account.seed, name: 'a', caps: [] });
  const b = signActor(EMPTY_MODULE, { account: account.seed, name: 'a', caps: [] });
  assert.match(a.claims.sub, /^M/);
  assert.notEqual(a.claims.sub, b.claims.sub);
  assert.equal(verifyActor(a.bytes).subject, a.claims.sub);
});

test('inspectActor reports every failed check, not only the first', () => {
  const signed = sign(SMALL_MODULE, { expiresAt: NOW + 1 });
  const changed = signed.bytes.slice();
  changed[13] = changed[13]! ^ 0x01; // the last byte of the type section's payload
  const report = inspectActor(changed, { now: NOW + 10 });
  assert.deepEqual(
    report.checks.filter((c) => !c.ok).map((c) => c.code),
    ['CLAIMS_HASH', 'CLAIMS_EXPIRED'],
  );
  assert.ok(report.checks.find((c) => c.name === 'signature')!.ok);
});

test('bad sign and verify options are refused without echoing seeds', () => {
  const cases: Array<[Partial<SignActorOptions>, RegExp]> = [
    [{ account: module.seed }, /account: expected the seed of an account key, got the seed of a module key/],
    [{ module: account.seed }, /module: expected the seed of a module key, got the seed of an account key/],
    [{ account: 'SAnotaseed' }, /account: not a valid nkey seed/],
    [{ name: '  ' }, /name/],
    [{ expiresAt: NOW, notBefore: NOW + 5 }, /expiresAt must be after notBefore/],
    [{ rev: -1 }, /rev/],
  ];
  for (const [extra, pattern] of cases) {
    assert.throws(
      () => sign(SMALL_MODULE, extra),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, 'OPTIONS_INVALID');
        assert.match(err.message, pattern);
        assert.ok(!err.message.includes(account.seed) && !err.message.includes(module.seed));
        return true;
      },
    );
  }
  assert.throws(() => verifyActor(SMALL_MODULE, { issuers: ['not-a-key'] }), { code: 'OPTIONS_INVALID', message: /issuers\.0: not an account public key/ });
  assert.throws(() => sign(new TextEncoder().encode('nope')), { code: 'WASM_MALFORMED' });
});

test('an oversized claims section is refused before it is copied or decoded, with the reason', () => {
  // An unsigned 80 MiB "JWT" once took seconds of main-thread time and hundreds of MiB.
  const huge = appendCustomSection(SMALL_MODULE, 'jwt', new Uint8Array(80 * 1024 * 1024).fill(0x41));
  const before = process.memoryUsage().arrayBuffers;
  const started = performance.now();
  assertRefused(() => verifyActor(huge), 'CLAIMS_MALFORMED', /section "jwt" is 83886080 bytes, over the limit of 65536/);
  const ms = performance.now() - started;
  // Generous bounds (the old path took ~4 s): what matters is that nothing scaled with the section.
  assert.ok(ms < 1000, `refused in ${ms.toFixed(0)} ms`);
  assert.ok(process.memoryUsage().arrayBuffers - before < 8 * 1024 * 1024, 'the section was not copied');
  assertRefused(() => readClaims(huge), 'CLAIMS_MALFORMED', /over the limit/);
  assert.throws(() => inspectActor(huge), /over the limit/);
});

test('the signature is checked before the claims are parsed, and the claims are parsed once', () => {
  const signed = sign(SMALL_MODULE);
  const header = signed.token.split('.')[0]!;
  const tokenFor = (claimsText: string, seed: string) => {
    const input = `${header}.${Buffer.from(claimsText).toString('base64url')}`;
    return `${input}.${Buffer.from(signingKey(seed).sign(new TextEncoder().encode(input))).toString('base64url')}`;
  };
  // Claims that are not JSON at all, naming an issuer: a wrong signer is refused for the
  // signature, so the parse (which would fail) never ran; the right signer gets to the parse.
  const notJson = `{"iss":"${account.publicKey}", this is not json`;
  const other = generateKeyPair('account');
  assertRefused(() => verifyActor(withToken(signed.bytes, tokenFor(notJson, other.seed))), 'CLAIMS_SIGNATURE', /does not verify with the issuer's key A/);
  assertRefused(() => verifyActor(withToken(signed.bytes, tokenFor(notJson, account.seed))), 'CLAIMS_MALFORMED', /claims is not UTF-8 JSON/);
  // A decoy "iss" signed by the attacker cannot lend its key to the issuer the claims name.
  const decoy = JSON.stringify({ x: { iss: other.publicKey }, ...signed.claims });
  assertRefused(() => verifyActor(withToken(signed.bytes, tokenFor(decoy, other.seed))), 'CLAIMS_SIGNATURE', new RegExp(`signed by ${other.publicKey} but its claims name the issuer "${account.publicKey}"`));
  // No issuer at all: refused without a parse.
  assertRefused(() => verifyActor(withToken(signed.bytes, tokenFor('{"sub":"x"}', account.seed))), 'CLAIMS_MALFORMED', /no issuer account key/);

  const claimsText = Buffer.from(signed.token.split('.')[1]!, 'base64url').toString();
  const parse = JSON.parse;
  let parsed = 0;
  JSON.parse = (text: string, reviver?: Parameters<typeof JSON.parse>[1]) => {
    if (text === claimsText) parsed++;
    return parse(text, reviver);
  };
  try {
    assert.equal(verifyActor(signed.bytes, { now: NOW }).subject, module.publicKey);
  } finally {
    JSON.parse = parse;
  }
  assert.equal(parsed, 1, 'the claims were parsed once');
});
