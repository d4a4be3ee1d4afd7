/**
 * `pods/{name}/exec`, `attach` and `portforward`: upgrade requests (SPDY, WebSocket) proxied to
 * the kubelet of the pod's node, as the real server's upgrade-aware proxy does. The request goes to
 * `/exec|attach/{ns}/{pod}/{container}` or `/portForward/{ns}/{pod}` over TLS with the server's
 * kubelet client credentials; the kubelet's answer (101 and then raw bytes both ways, or an error
 * Status) reaches the client unchanged.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { connect as tlsConnect } from 'node:tls';
import type { Logger } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import { ApiError, badRequest, failureStatus } from './api-error.ts';
import { Query } from './http-util.ts';
import { containerOf, kubeletOf, type KubeletClientCredentials } from './log-proxy.ts';
import type { Registry } from './registry.ts';

export const STREAM_SUBRESOURCES = ['exec', 'attach', 'portforward'];

/** Writes an API error as a plain HTTP answer on a socket that was never upgraded. */
export function refuseUpgrade(socket: Duplex, err: unknown): void {
  const e = err instanceof ApiError ? err : new ApiError(500, 'InternalError', (err as Error).message);
  const body = JSON.stringify(failureStatus(e.code, e.reason, e.message));
  const text = e.code === 401 ? 'Unauthorized' : e.code === 404 ? 'Not Found' : e.code === 400 ? 'Bad Request' : 'Error';
  socket.end(`HTTP/1.1 ${e.code} ${text}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}

/** The kubelet path for a streaming subresource request. */
export function kubeletStreamPath(registry: Registry, namespace: string, pod: string, subresource: string, url: URL): { base: string; path: string } {
  const kubelet = kubeletOf(registry, namespace, pod);
  const q = new URLSearchParams(url.searchParams);
  const enc = encodeURIComponent;
  if (subresource === 'portforward') return { base: kubelet.base, path: `/portForward/${enc(namespace)}/${enc(pod)}${q.size ? `?${q}` : ''}` };
  const container = containerOf(new Query(url.searchParams), pod, kubelet);
  q.delete('container');
  return { base: kubelet.base, path: `/${subresource}/${enc(namespace)}/${enc(pod)}/${enc(container)}${q.size ? `?${q}` : ''}` };
}

/** Proxies the upgrade to the kubelet: the request as it came (path mapped), then bytes both ways. */
export function proxyUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, target: { base: string; path: string }, creds: KubeletClientCredentials, logger: Logger): void {
  const base = new URL(target.base);
  const upstream = tlsConnect({
    host: base.hostname.replace(/^\[|\]$/g, ''),
    port: Number(base.port),
    cert: creds.cert,
    key: creds.key,
    ca: creds.ca,
    rejectUnauthorized: creds.ca !== undefined,
  });
  const lines = [`${req.method ?? 'GET'} ${target.path} HTTP/1.1`, `Host: ${base.host}`];
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i]!;
    if (/^(host|authorization|content-length)$/i.test(name)) continue;
    lines.push(`${name}: ${req.rawHeaders[i + 1]}`);
  }
  if (creds.bearerToken) lines.push(`Authorization: Bearer ${creds.bearerToken}`);
  const close = () => {
    upstream.destroy();
    socket.destroy();
  };
  upstream.once('secureConnect', () => {
    upstream.write(`${lines.join('\r\n')}\r\n\r\n`);
    if (head.length) upstream.write(head);
    upstream.pipe(socket);
    socket.pipe(upstream);
  });
  upstream.on('error', (err) => {
    logger.debug({ err, path: target.path }, 'kubelet stream connection failed');
    if (upstream.bytesRead === 0 && !socket.destroyed) refuseUpgrade(socket, new ApiError(500, 'InternalError', `error dialing backend: ${err.message}`));
    else close();
  });
  socket.on('error', close);
  socket.on('close', () => upstream.destroy());
  upstream.on('close', () => socket.end());
}

/** A streaming subresource asked for without an upgrade. */
export function upgradeRequired(): ApiError {
  return badRequest('Upgrade request required');
}

/** The WebSocket subprotocol kubectl (1.31+) tunnels port-forward's SPDY in. */
export const SPDY_TUNNEL_PROTOCOL = 'SPDY/3.1+portforward.k8s.io';

/**
 * The `ws` library refuses `/` in subprotocol names (RFC 6455 tokens exclude it), but kubectl's
 * name has one: the header is taken off the request before the handshake and the chosen protocol
 * added to the 101 answer (the only place kubectl looks at it).
 */
const tunnels = new WebSocketServer({ noServer: true });
tunnels.on('headers', (headers: string[]) => headers.push(`Sec-WebSocket-Protocol: ${SPDY_TUNNEL_PROTOCOL}`));

export function wantsSpdyTunnel(req: IncomingMessage): boolean {
  const protocols = String(req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
  return String(req.headers.upgrade ?? '').toLowerCase() === 'websocket' && protocols.includes(SPDY_TUNNEL_PROTOCOL);
}

/**
 * kubectl's WebSocket port-forward, as the real server tunnels it: the server opens a SPDY
 * upgrade to the kubelet and, once the kubelet switched protocols, accepts the client's WebSocket
 * and carries the bytes both ways (each WebSocket message holds SPDY bytes). A kubelet that
 * refuses gets its answer passed to the client as is.
 */
export function tunnelPortForward(req: IncomingMessage, socket: Duplex, head: Buffer, target: { base: string; path: string }, creds: KubeletClientCredentials, logger: Logger): void {
  const base = new URL(target.base);
  const upstream = tlsConnect({ host: base.hostname.replace(/^\[|\]$/g, ''), port: Number(base.port), cert: creds.cert, key: creds.key, ca: creds.ca, rejectUnauthorized: creds.ca !== undefined });
  let received = Buffer.alloc(0);
  let upgraded = false;
  const onHead = (chunk: Buffer) => {
    received = Buffer.concat([received, chunk]);
    const end = received.indexOf('\r\n\r\n');
    if (end < 0) {
      if (received.length > 64 * 1024) upstream.destroy();
      return;
    }
    const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(received.toString('latin1', 0, end))?.[1] ?? 0);
    if (status !== 101) {
      // The kubelet said no: its answer goes to the client as it is.
      upstream.off('data', onHead);
      socket.write(received);
      upstream.pipe(socket);
      return;
    }
    upstream.off('data', onHead);
    upgraded = true;
    const rest = received.subarray(end + 4);
    delete req.headers['sec-websocket-protocol'];
    tunnels.handleUpgrade(req, socket, head, (ws: WebSocket) => {
      if (rest.length) ws.send(rest, { binary: true });
      upstream.on('data', (c: Buffer) => ws.send(c, { binary: true }));
      ws.on('message', (data: Buffer) => upstream.write(data));
      ws.on('close', () => upstream.destroy());
      ws.on('error', () => upstream.destroy());
      upstream.on('close', () => ws.close());
    });
  };
  upstream.once('secureConnect', () => {
    const lines = [`POST ${target.path} HTTP/1.1`, `Host: ${base.host}`, 'Connection: Upgrade', 'Upgrade: SPDY/3.1', 'X-Stream-Protocol-Version: portforward.k8s.io', 'Content-Length: 0'];
    if (creds.bearerToken) lines.push(`Authorization: Bearer ${creds.bearerToken}`);
    upstream.write(`${lines.join('\r\n')}\r\n\r\n`);
  });
  upstream.on('data', onHead);
  upstream.on('error', (err) => {
    logger.debug({ err, path: target.path }, 'kubelet port-forward connection failed');
    if (!upgraded && !socket.destroyed) refuseUpgrade(socket, new ApiError(500, 'InternalError', `error dialing backend: ${err.message}`));
  });
  upstream.on('end', () => {
    if (!upgraded) socket.end();
  });
}
