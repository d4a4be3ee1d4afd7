import assert from 'node:assert/strict';
import { createServer, connect, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { SpdySession } from './spdy.ts';

/** A connected pair of sockets on loopback: the session on one end, the test on the other. */
async function pair(): Promise<{ server: Socket; client: Socket; close(): void }> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const accepted = new Promise<Socket>((r) => srv.once('connection', r));
  const client = connect((srv.address() as AddressInfo).port, '127.0.0.1');
  const server = await accepted;
  return { server, client, close: () => (client.destroy(), server.destroy(), srv.close()) };
}

function control(version: number, type: number, body: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt16BE(0x8000 | version, 0);
  head.writeUInt16BE(type, 2);
  head.writeUInt32BE(body.length, 4);
  return Buffer.concat([head, body]);
}

describe('SPDY session (attacks and mistakes)', () => {
  it('closes on a frame of another SPDY version', async () => {
    const p = await pair();
    const session = new SpdySession(p.server);
    const failed = new Promise<Error>((r) => session.once('error', r));
    p.client.write(control(2, 1, Buffer.alloc(10)));
    assert.match((await failed).message, /SPDY version 2/);
    await new Promise((r) => setImmediate(r));
    assert.equal(p.server.destroyed, true, 'the connection is closed');
    p.close();
  });

  it('closes on a header block that is not zlib with the SPDY dictionary', async () => {
    const p = await pair();
    const session = new SpdySession(p.server);
    const failed = new Promise<Error>((r) => session.once('error', r));
    let streams = 0;
    session.on('stream', () => streams++);
    const body = Buffer.concat([Buffer.from([0, 0, 0, 1, 0, 0, 0, 0, 0, 0]), Buffer.from('not a zlib stream at all')]);
    p.client.write(control(3, 1, body));
    await failed;
    assert.equal(streams, 0, 'no stream was opened from it');
    p.close();
  });

  it('echoes a client ping and ignores frames for streams it does not know', async () => {
    const p = await pair();
    new SpdySession(p.server);
    const got = new Promise<Buffer>((r) => p.client.once('data', r));
    const data = Buffer.alloc(8);
    data.writeUInt32BE(99, 0); // a data frame for stream 99, never opened
    p.client.write(data);
    const ping = control(3, 6, Buffer.from([0, 0, 0, 7]));
    p.client.write(ping);
    assert.deepEqual(await got, ping);
    p.close();
  });
});
