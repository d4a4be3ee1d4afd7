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
