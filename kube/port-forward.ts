/**
 * `/portForward/{namespace}/{pod}` of the kubelet API: the port-forward protocol
 * (`portforward.k8s.io`) over SPDY/3.1, as kubectl speaks it through the API server (which, for
 * kubectl's WebSocket default, carries the same SPDY bytes in WebSocket messages). For each local
 * connection the client opens two streams with the same `requestid`: `error` (what goes wrong is
 * written there) and `data` (the connection's bytes). The node connects each pair to
 * podIP:port, for the pod's own ports only (its containers' ports and its HTTP servers' ports):
 * never another address of the node.
 */
import type { IncomingMessage } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { RST_PROTOCOL_ERROR, SpdySession, type SpdyStream } from './spdy.ts';

export const PORT_FORWARD_PROTOCOL = 'portforward.k8s.io';

export interface PortForwardTarget {
  namespace: string;
  pod: string;
  podIP: string;
  /** The ports that may be forwarded. */
  ports: number[];
}

/** How long the second stream of a pair may keep the first waiting. */
const PAIR_TIMEOUT_MS = 30_000;

interface Pair {
  error?: SpdyStream;
  data?: SpdyStream;
  timer: NodeJS.Timeout;
}

/** Why an upgrade request is not a port-forward request this node speaks, or undefined when it is. */
export function portForwardRefusal(req: IncomingMessage): string | undefined {
  const upgrade = String(req.headers.upgrade ?? '').toLowerCase();
  const protocols = String(req.headers['x-stream-protocol-version'] ?? '').split(',').map((p) => p.trim());
  if (!upgrade.split(',').map((u) => u.trim()).includes('spdy/3.1')) return `port-forward is served over SPDY/3.1 (Upgrade: SPDY/3.1), not ${JSON.stringify(req.headers.upgrade ?? '')}`;
  if (!protocols.includes(PORT_FORWARD_PROTOCOL)) return `port-forward speaks ${PORT_FORWARD_PROTOCOL}; the client offered ${JSON.stringify(protocols.filter(Boolean))}`;
  return undefined;
}

/** Accepts the upgrade and serves the session until the client goes. */
export function servePortForward(socket: Duplex, head: Buffer, target: PortForwardTarget, logger: Logger): SpdySession {
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: ${PORT_FORWARD_PROTOCOL}\r\n\r\n`);
  const session = new SpdySession(socket, head);
  const pairs = new Map<string, Pair>();
  const log = logger.child({ pod: `${target.namespace}/${target.pod}` });
  session.on('error', (err: Error) => log.debug({ err: err.message }, 'port-forward session ended on a protocol error'));
  session.on('stream', (stream: SpdyStream) => {
    const kind = stream.headers.streamtype;
    const id = stream.headers.requestid ?? '';
    if (kind !== 'error' && kind !== 'data') return stream.reset(RST_PROTOCOL_ERROR);
    let pair = pairs.get(id);
    if (!pair) {
      pair = { timer: setTimeout(() => dropPair(id), PAIR_TIMEOUT_MS) };
      pairs.set(id, pair);
    }
    if (pair[kind]) return stream.reset(RST_PROTOCOL_ERROR);
    pair[kind] = stream;
    if (pair.error && pair.data) {
      clearTimeout(pair.timer);
      pairs.delete(id);
      forward(pair.error, pair.data, target, log);
    }
  });
  const dropPair = (id: string) => {
    const pair = pairs.get(id);
    pairs.delete(id);
    pair?.error?.reset();
    pair?.data?.reset();
  };
  session.on('close', () => {
    for (const id of [...pairs.keys()]) {
      clearTimeout(pairs.get(id)!.timer);
      pairs.delete(id);
    }
  });
  return session;
}

/** Connects one error/data pair to the pod's port. */
function forward(error: SpdyStream, data: SpdyStream, target: PortForwardTarget, log: Logger): void {
  const port = Number(data.headers.port);
  const fail = (message: string) => {
    error.write(Buffer.from(message, 'utf8'));
    error.end();
    data.end();
  };
  if (!Number.isInteger(port) || !target.ports.includes(port)) {
    return fail(`port ${data.headers.port} is not a port of pod ${target.namespace}/${target.pod} (its ports: ${target.ports.join(', ') || 'none'})`);
  }
  const conn: Socket = connect(port, target.podIP);
  let open = true;
  const close = () => {
    open = false;
    conn.destroy();
  };
  conn.on('connect', () => log.debug({ port }, 'port-forward connection open'));
  conn.on('data', (chunk: Buffer) => data.write(chunk));
  conn.on('end', () => data.end());
  conn.on('error', (err: NodeJS.ErrnoException) => {
    if (open) fail(`error forwarding port ${port} to pod ${target.namespace}/${target.pod}: ${err.code ?? err.message}`);
    close();
  });
  conn.on('close', () => {
    open = false;
    error.end();
  });
  data.on('data', (chunk: Buffer) => {
    if (open) conn.write(chunk);
  });
  data.on('end', () => conn.end());
  data.on('reset', close);
  error.on('reset', close);
}
