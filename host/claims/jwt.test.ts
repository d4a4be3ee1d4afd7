import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { base64urlEncode, decodeJwt, encodeJwt, issuerCandidates, MAX_TOKEN_BYTES, parseJwtClaims, splitJwt, verifyJwtSignature } from './jwt.ts';
import { generateKeyPair, signingKey } from './keys.ts';
import { customSection } from './wasm-sections.ts';

const fixtures = new URL('../shared/fixtures/', new URL('../../', import.meta.url));

function assertMalformed(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (err: Error & { code?: string }) => {
    assert.equal(err.code, 'CLAIMS_MALFORMED');
    assert.match(err.message, pattern);
    return true;
  });
}

test('encodes waSCC-style tokens that decode and verify with the signer key only', () => {
  const account = generateKeyPair('account');
  const claims = { iss: account.publicKey, sub: 'x', n: 'é ünïcode ✓' };
  const token = encodeJwt(claims, account.seed);
  const [header, body, sig] = token.split('.');
  assert.equal(Buffer.from(header!, 'base64url').toString(), '{"typ":"jwt","alg":"Ed25519"}');
  assert.ok(!token.includes('=') && !token.includes('+') && !token.includes('/'));
  assert.deepEqual(JSON.parse(Buffer.from(body!, 'base64url').toString()), claims);
  assert.equal(Buffer.from(sig!, 'base64url').length, 64);

  const decoded = decodeJwt(token);
  assert.deepEqual(decoded.claims, claims);
  assert.ok(verifyJwtSignature(decoded, account.publicKey));
  assert.ok(!verifyJwtSignature(decoded, generateKeyPair('account').publicKey));
  // Claims swapped for others under the same signature: no longer verifies.
  const altered = decodeJwt(`${header}.${base64urlEncode(JSON.stringify({ ...claims, sub: 'y' }))}.${sig}`);
  assert.ok(!verifyJwtSignature(altered, account.publicKey));
});

test("verifies the real echo actor's token with its issuer's key", () => {
  const echo = readFileSync(new URL('wascc/echo.wasm', fixtures));
  const token = new TextDecoder().decode(customSection(echo, 'jwt'));
  const decoded = decodeJwt<{ iss: string }>(token);
  assert.equal(decoded.header.alg, 'Ed25519');
  assert.ok(verifyJwtSignature(decoded, decoded.claims.iss));
  assert.ok(!verifyJwtSignature(decoded, generateKeyPair('account').publicKey));
});

test('rejects tokens in other algorithms or shapes', () => {
  const account = generateKeyPair('account');
  const body = base64urlEncode(JSON.stringify({ iss: account.publicKey }));
  const sig = base64urlEncode(signingKey(account.seed).sign(new Uint8Array([1])));
  const withHeader = (h: object) => `${base64urlEncode(JSON.stringify(h))}.${body}.${sig}`;
  assertMalformed(() => decodeJwt(withHeader({ typ: 'jwt', alg: 'none' })), /unsupported signing algorithm "none"/);
  assertMalformed(() => decodeJwt(withHeader({ typ: 'JWT', alg: 'HS256' })), /unsupported signing algorithm "HS256"/);
  assertMalformed(() => decodeJwt(withHeader({ typ: 'jwt' })), /unsupported signing algorithm undefined/);
  assertMalformed(() => decodeJwt(withHeader({ typ: 'jose+json', alg: 'Ed25519' })), /unsupported token type/);
  assertMalformed(() => decodeJwt(`${body}.${sig}`), /expected 3 dot-separated segments, found 2/);
  assertMalformed(() => decodeJwt(`${withHeader({ alg: 'Ed25519' })}=`), /signature is not base64url without padding/);
  assertMalformed(() => decodeJwt(`${base64urlEncode('{"alg":"Ed25519"}')}.${body}.${sig.slice(0, 40)}`), /signature is 30 bytes/);
  assertMalformed(() => decodeJwt(`${base64urlEncode('{"alg":"Ed25519"}')}.${base64urlEncode('not json')}.${sig}`), /claims is not UTF-8 JSON/);
  assertMalformed(() => decodeJwt(`${base64urlEncode('{"alg":"Ed25519"}')}.${base64urlEncode('[1]')}.${sig}`), /claims is not a JSON object/);
  assertMalformed(() => decodeJwt(`he*der.${body}.${sig}`), /header is not base64url/);
});

test('a token with a well-formed header accepts typ in any case (JWT or jwt)', () => {
  const account = generateKeyPair('account');
  const token = encodeJwt({ a: 1 }, account.seed);
  const [, body, sig] = token.split('.');
  const upper = `${base64urlEncode('{"typ":"JWT","alg":"Ed25519"}')}.${body}.${sig}`;
  assert.deepEqual(decodeJwt(upper).claims, { a: 1 });
  // The header is part of what is signed: a changed header no longer verifies.
  assert.ok(!verifyJwtSignature(decodeJwt(upper), account.publicKey));
});

test('splits a token without parsing its claims; refuses oversized tokens and headers; finds issuer candidates', () => {
  const account = generateKeyPair('account');
  const token = encodeJwt({ iss: account.publicKey, nested: { iss: 'decoy' } }, account.seed);
  const split = splitJwt(token);
  assert.equal(typeof split.claimsText, 'string');
  assert.ok(verifyJwtSignature(split, account.publicKey));
  assert.deepEqual(issuerCandidates(split), [account.publicKey, 'decoy']);
  assert.deepEqual(issuerCandidates({ claimsText: '{"iss" : "A1", "iss":"A1","x":"\\"iss\\":\\"B\\""}' }), ['A1']);
  const [, body, sig] = token.split('.');
  assertMalformed(() => splitJwt(`${token}${'A'.repeat(MAX_TOKEN_BYTES)}`), /over the limit of 65536/);
  assertMalformed(() => splitJwt(`${base64urlEncode(JSON.stringify({ alg: 'Ed25519', pad: 'x'.repeat(2000) }))}.${body}.${sig}`), /header is \d+ characters, over the limit/);
  // Claims that are not JSON split fine (the signature can still be checked), and fail when parsed.
  const notJson = splitJwt(`${token.split('.')[0]}.${base64urlEncode('not json')}.${sig}`);
  assertMalformed(() => parseJwtClaims(notJson), /claims is not UTF-8 JSON/);
});
