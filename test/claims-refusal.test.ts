/**
 * Every reason an actor is refused at load, with variants made the way an operator would make
 * them: `wasmlet keys gen` and `wasmlet claims sign` (run in-process), then `Host.startActor`.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Command } from 'commander';
import pino from 'pino';
import { registerClaimsCommands } from '../host/index.ts';
import { appendCustomSection, customSection, encodeJwt, Host, isClaimsError, readClaims, stripCustomSections } from '../host/index.ts';
import { compileWat, toolboxWat } from './helpers/wat.ts';

async function wasmlet(...args: string[]): Promise<string> {
  let out = '';
  const io = { stdout: (s: string) => void (out += s), stderr: (s: string) => void (out += s) };
  const program = new Command('wasmlet').exitOverride().configureOutput({ writeOut: io.stdout, writeErr: io.stderr });
  registerClaimsCommands(program, io);
  await program.parseAsync(args, { from: 'user' });
  return out;
}

describe('actors refused at load', () => {
  let dir: string;
  let host: Host;
  let unsigned: string;
  const now = Math.floor(Date.now() / 1000);
  const file = (name: string) => join(dir, name);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'wasmlet-refusal-'));
    unsigned = file('toolbox.wasm');
    await writeFile(unsigned, await compileWat(toolboxWat()));
    await wasmlet('keys', 'gen', 'account', '--out', file('account.nk'));
    await wasmlet('keys', 'gen', 'account', '--out', file('other.nk'));
    host = await Host.start({ workers: 1 }, { logger: pino({ level: 'silent' }) });
  });
  after(async () => {
    await host.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const sign = async (out: string, ...extra: string[]) => {
    await wasmlet('claims', 'sign', unsigned, '--account', file('account.nk'), '--name', 'toolbox', '--cap', 'wascc:http_server', '-o', file(out), ...extra);
    return readFile(file(out));
  };

  const refused = (bytes: Uint8Array, code: string, reason: RegExp) =>
    assert.rejects(host.startActor(bytes), (e) => {
      assert.ok(isClaimsError(e), String(e));
      assert.equal(e.code, code);
      assert.match(e.message, reason);
      return true;
    });

  it('an unsigned module', async () => {
    await refused(await readFile(unsigned), 'CLAIMS_MISSING', /not signed/);
  });

  it('a byte changed after signing', async () => {
    const bytes = Buffer.from(await sign('signed.wasm'));
    const at = bytes.indexOf('handling');
    assert.ok(at > 0);
    bytes[at] = 'H'.charCodeAt(0);
    await refused(bytes, 'CLAIMS_HASH', /hash/);
    // The unchanged file loads, so the refusal was about the changed byte.
    const info = await host.startActor(await sign('signed-again.wasm'));
    await host.stopActor(info.id);
  });

  it('a signature by a key other than the issuer', async () => {
    const bytes = await sign('forged.wasm');
    const { claims } = readClaims(bytes);
    const otherSeed = (await readFile(file('other.nk'), 'utf8')).trim();
    const forged = encodeJwt(claims, otherSeed); // iss still names the first account
    assert.ok(customSection(bytes, 'jwt'));
    const rewritten = appendCustomSection(stripCustomSections(bytes, ['jwt']), 'jwt', new TextEncoder().encode(forged));
    await refused(rewritten, 'CLAIMS_SIGNATURE', /signature/);
  });

  it('exp in the past', async () => {
    await refused(await sign('expired.wasm', '--exp', String(now - 60)), 'CLAIMS_EXPIRED', /expired/);
  });

  it('nbf in the future', async () => {
    await refused(await sign('early.wasm', '--nbf', String(now + 3600)), 'CLAIMS_NOT_YET_VALID', /not valid (until|before)|not yet valid/);
  });

  it('an issuer outside the allow-list', async () => {
    const otherPublic = /(A[A-Z2-7]{55})/.exec(await wasmlet('keys', 'gen', 'account', '--out', file('third.nk')))![1]!;
    const strict = await Host.start({ workers: 1, issuers: [otherPublic] }, { logger: pino({ level: 'silent' }) });
    try {
      await assert.rejects(strict.startActor(await sign('not-allowed.wasm')), (e) => isClaimsError(e) && e.code === 'CLAIMS_ISSUER_NOT_ALLOWED' && /allow/.test(e.message));
    } finally {
      await strict.stop();
    }
  });
});
