import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { generate } from 'selfsigned';
import { Events, type NatsConnection } from 'nats';
import { startNatsServer, freePort } from '../../test/helpers/nats-server.ts';
import { generateKeyPair } from '../claims/keys.ts';
import { isOptionsError, isWasmletError } from '../errors.ts';
import { connectNats, NATS_CONNECT_FAILED, parseNatsConnectionOptions, redactServer } from './connection.ts';

const silent = pino({ level: 'silent' });
const dir = mkdtempSync(join(tmpdir(), 'wasmlet-nats-conn-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A logger whose lines are kept as parsed JSON objects. */
function recordingLogger(): { logger: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines };
}

/** One request/reply through the server, proving the connection works. */
async function roundTrip(nc: NatsConnection): Promise<void> {
  const sub = nc.subscribe('conn.test.echo', { callback: (_e, m) => m.respond(m.data) });
  try {
    const r = await nc.request('conn.test.echo', new TextEncoder().encode('hi'), { timeout: 2000 });
    assert.equal(new TextDecoder().decode(r.data), 'hi');
  } finally {
    sub.unsubscribe();
  }
}

test('options: validation names the problem and never echoes a secret', () => {
  const ok = parseNatsConnectionOptions({ servers: ['127.0.0.1:4999'] });
  assert.equal(ok.reconnect.maxAttempts, -1);
  assert.equal(ok.timeoutMs, 5000);
  assert.equal(ok.name, 'wasmlet');
  const bad = (input: unknown, pattern: RegExp) =>
    assert.throws(() => parseNatsConnectionOptions(input), (err: unknown) => isOptionsError(err) && pattern.test((err as Error).message));
  bad({ servers: [] }, /at least one NATS server/);
  bad({ servers: ['http://x:1'] }, /servers\.0: a NATS server URL/);
  bad({ servers: ['nats://h:1'], token: 't', user: 'u', pass: 'p' }, /one way to authenticate/);
  bad({ servers: ['nats://h:1'], user: 'u' }, /user and pass go together/);
  bad({ servers: ['nats://h:1'], tls: { cert: 'c' } }, /cert and key go together/);
  bad({ servers: ['nats://h:1'], reconnect: { maxAttempts: -2 } }, /reconnect\.maxAttempts/);
  bad({ servers: ['nats://h:1'], bogus: 1 }, /bogus/);
  const account = generateKeyPair('account').seed;
  assert.throws(
    () => parseNatsConnectionOptions({ servers: ['nats://h:1'], nkeySeed: account }),
    (err: Error) => /not a user nkey seed/.test(err.message) && !err.message.includes(account),
  );
  assert.equal(redactServer('nats://alice:secret@h:4222'), 'nats://***:***@h:4222');
  assert.equal(redactServer('tok@h:1'), 'nats://***@h:1');
});

test('two servers given: connects to the one that is up', async () => {
  const server = await startNatsServer({ jetstream: false });
  const deadPort = await freePort();
  try {
    const nc = await connectNats({ servers: [`nats://127.0.0.1:${deadPort}`, server.url], randomize: false }, silent);
    try {
      assert.equal(nc.getServer(), `127.0.0.1:${server.port}`);
      await roundTrip(nc);
    } finally {
      await nc.close();
    }
  } finally {
    await server.stop();
  }
});

test('no server up: NATS_CONNECT_FAILED naming where it tried', async () => {
  const port = await freePort();
  await assert.rejects(connectNats({ servers: [`127.0.0.1:${port}`], timeoutMs: 1000, reconnect: { maxAttempts: 0 } }, silent), (err: unknown) => {
    assert.ok(isWasmletError(err));
    assert.equal(err.code, NATS_CONNECT_FAILED);
    assert.match(err.message, new RegExp(`nats://127\\.0\\.0\\.1:${port}`));
    return true;
  });
});

test('token auth: right token connects, wrong token is refused', async () => {
  const server = await startNatsServer({ jetstream: false, auth: { token: 's3cret-token' } });
  try {
    const nc = await connectNats({ servers: [server.url], token: 's3cret-token' }, silent);
    await roundTrip(nc);
    await nc.close();
    // Token in the URL works too.
    const viaUrl = await connectNats({ servers: [`nats://s3cret-token@127.0.0.1:${server.port}`] }, silent);
    await roundTrip(viaUrl);
    await viaUrl.close();
    await assert.rejects(connectNats({ servers: [server.url], token: 'wrong', reconnect: { maxAttempts: 0 } }, silent), (err: unknown) => {
      assert.ok(isWasmletError(err) && err.code === NATS_CONNECT_FAILED);
      assert.match(err.message, /AUTHORIZATION_VIOLATION|Authorization Violation/i);
      assert.ok(!err.message.includes('wrong'), 'the token is not echoed');
      return true;
    });
  } finally {
    await server.stop();
  }
});

test('user/password auth', async () => {
  const server = await startNatsServer({ jetstream: false, auth: { users: [{ user: 'alice', password: 'pw-a' }] } });
  try {
    const nc = await connectNats({ servers: [server.url], user: 'alice', pass: 'pw-a' }, silent);
    await roundTrip(nc);
    await nc.close();
    await assert.rejects(connectNats({ servers: [server.url], user: 'alice', pass: 'nope', reconnect: { maxAttempts: 0 } }, silent), /AUTHORIZATION/i);
  } finally {
    await server.stop();
  }
});

test('nkey auth: seed or seed file of a configured user', async () => {
  const user = generateKeyPair('user');
  const stranger = generateKeyPair('user');
  const server = await startNatsServer({ jetstream: false, auth: { nkeys: [user.publicKey] } });
  const seedFile = join(dir, 'user.nk');
  writeFileSync(seedFile, `# a comment\n${user.seed}\n`, { mode: 0o600 });
  try {
    const bySeed = await connectNats({ servers: [server.url], nkeySeed: user.seed }, silent);
    await roundTrip(bySeed);
    await bySeed.close();
    const byFile = await connectNats({ servers: [server.url], nkeyFile: seedFile }, silent);
    await roundTrip(byFile);
    await byFile.close();
    await assert.rejects(connectNats({ servers: [server.url], nkeySeed: stranger.seed, reconnect: { maxAttempts: 0 } }, silent), /AUTHORIZATION/i);
    await assert.rejects(connectNats({ servers: [server.url], nkeyFile: join(dir, 'missing.nk') }, silent), (err: unknown) => {
      assert.ok(isOptionsError(err));
      assert.match((err as Error).message, /nkeyFile .*missing\.nk cannot be read \(ENOENT\)/);
      return true;
    });
  } finally {
    await server.stop();
  }
});

test('reconnects after a server restart and logs the outage', async () => {
  const server = await startNatsServer({ jetstream: false });
  const { logger, lines } = recordingLogger();
  try {
    const nc = await connectNats({ servers: [server.url], reconnect: { waitMs: 100, jitterMs: 0 } }, logger);
    const events: string[] = [];
    void (async () => {
      for await (const s of nc.status()) events.push(s.type);
    })();
    try {
      await roundTrip(nc);
      await server.restart();
      const deadline = Date.now() + 10_000;
      while (!events.includes(Events.Reconnect) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
      assert.ok(events.includes(Events.Disconnect), `events: ${events.join(', ')}`);
      assert.ok(events.includes(Events.Reconnect), `events: ${events.join(', ')}`);
      await roundTrip(nc);
      const msgs = lines.map((l) => l.msg);
      assert.ok(msgs.includes('nats disconnected; reconnecting'), `log: ${msgs.join(' | ')}`);
      assert.ok(msgs.includes('nats reconnected'), `log: ${msgs.join(' | ')}`);
    } finally {
      await nc.close();
    }
  } finally {
    await server.stop();
  }
});

test('TLS: CA, client certificate and key files (mutual TLS)', async () => {
  const pems = await generate([{ name: 'commonName', value: 'wasmlet-nats-test' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate: new Date(Date.now() - 60_000),
    notAfterDate: new Date(Date.now() + 24 * 3600_000),
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, keyCertSign: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true, clientAuth: true },
      { name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }, { type: 7, ip: '127.0.0.1' }] },
    ],
    clientCertificate: { cn: 'wasmlet-nats-client', keyType: 'ec', curve: 'P-256', algorithm: 'sha256' },
  });
  const file = (name: string, text: string) => {
    const p = join(dir, name);
    writeFileSync(p, text, { mode: 0o600 });
    return p;
  };
  const ca = file('ca.pem', pems.cert);
  const serverKey = file('server-key.pem', pems.private);
  const clientCert = file('client.pem', pems.clientcert!);
  const clientKey = file('client-key.pem', pems.clientprivate!);
  const server = await startNatsServer({ jetstream: false, tls: { certFile: ca, keyFile: serverKey, caFile: ca, verify: true } });
  try {
    const nc = await connectNats({ servers: [`tls://127.0.0.1:${server.port}`], tls: { ca, cert: clientCert, key: clientKey } }, silent);
    await roundTrip(nc);
    await nc.close();
    // Without a client certificate the server refuses the connection.
    await assert.rejects(connectNats({ servers: [server.url], tls: { ca }, reconnect: { maxAttempts: 0 }, timeoutMs: 2000 }, silent), (err: unknown) => isWasmletError(err) && err.code === NATS_CONNECT_FAILED);
    // A missing file is an options error naming the file.
    await assert.rejects(connectNats({ servers: [server.url], tls: { ca: join(dir, 'nope.pem') } }, silent), /tls\.ca .*nope\.pem cannot be read/);
  } finally {
    await server.stop();
  }
});
