/** Helpers for the HTTP server provider's tests: a fake ProviderContext, free ports, raw sockets. */
import { connect, createServer as createNetServer } from 'node:net';
import type { Socket } from 'node:net';
import { pino } from 'pino';
import { MemoryLogStore } from '../../host/index.ts';
import type { LinkDefinition, ProviderContext } from '../../host/index.ts';

export type Invoke = ProviderContext['invokeActor'];

export const ACTOR = 'MB4OLDIC3TCZ4Q4TGGOVAZC43VXFE2JQVRAXQMQFXUCREOOFEKOKZTY2';
export const OTHER_ACTOR = 'MASCXFM4R6X63UD5MSCDZYCJNPBVSIU6RKMXUPXRKAOSBQ6UY3VT3NPZ';

/** A ProviderContext whose `invokeActor` is `invoke`, counting calls; pino lines are kept in `lines`. */
export function fakeContext(invoke: Invoke) {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  const calls = { count: 0 };
  const ctx: ProviderContext = {
    hostId: 'NTESTHOST',
    logger,
    logs: new MemoryLogStore(),
    invokeActor: (actor, operation, msg, options) => {
      calls.count++;
      return invoke(actor, operation, msg, options);
    },
  };
  return { ctx, lines, calls };
}

/** A port that was free a moment ago (bind port 0, read it, close). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createNetServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

export function link(port: number | string, actor = ACTOR, extra: Record<string, string> = {}): LinkDefinition {
  return { actor, contract: 'wascc:http_server', linkName: 'default', values: { PORT: String(port), ADDRESS: '127.0.0.1', ...extra } };
}

/** A raw TCP connection that collects everything the server sends until it closes. */
export async function rawSocket(port: number): Promise<{ socket: Socket; received: () => string; closed: Promise<void> }> {
  const socket = connect({ port, host: '127.0.0.1' });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  let data = '';
  socket.setEncoding('latin1');
  socket.on('data', (d: string) => (data += d));
  socket.on('error', () => {}); // resets are part of what some tests provoke
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return { socket, received: () => data, closed };
}

/** Send `text` on a new connection and resolve with what came back once the server closes it. */
export async function rawExchange(port: number, text: string, waitMs = 5000): Promise<string> {
  const s = await rawSocket(port);
  s.socket.write(text, 'latin1');
  const timer = setTimeout(() => s.socket.destroy(), waitMs);
  await s.closed;
  clearTimeout(timer);
  return s.received();
}
