/**
 * The kubelet HTTPS API, as much of it as `kubectl logs` needs through the API server's log proxy:
 *   GET /healthz                                      → ok (no credentials needed)
 *   GET /containerLogs/{namespace}/{pod}/{container}  → the container's log, from the LogStore
 *       follow, tailLines, timestamps, sinceSeconds, sinceTime, limitBytes (previous: 400)
 *   /exec/…, /attach/… (plain or upgrade requests) → 400 Status: not supported for wasm workloads
 *   /portForward/{namespace}/{pod} (upgrade)         → the pod's ports (port-forward.ts), when given
 * Everything but /healthz needs a caller the authenticator accepts.
 */
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { LogRecord, LogStore } from '../host/index.ts';
import type { KubeletAuthenticator } from './auth.ts';
import type { LogTarget } from './pod-targets.ts';

export type LogLookup = LogTarget | { error: 'pod' | 'container' };

export interface KubeletServerOptions {
  port: number;
  bindAddress: string;
  cert: string;
  key: string;
  clientCa?: string;
  logger: Logger;
  authenticator: KubeletAuthenticator;
  logs: LogStore;
  lookup(namespace: string, pod: string, container: string): LogLookup;
  /** Serves an upgraded `/portForward/{namespace}/{pod}` request; absent: port-forward is refused. */
  portForward?(namespace: string, pod: string, req: IncomingMessage, socket: Duplex, head: Buffer): void;
}

/** A Kubernetes `Status` failure body. */
function statusBody(code: number, reason: string, message: string): string {
  return JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code });
}

const STATUS_TEXT: Record<number, string> = { 400: 'Bad Request', 401: 'Unauthorized', 404: 'Not Found', 405: 'Method Not Allowed' };

/** Answers on a socket that was not upgraded (upgrade requests never reach a ServerResponse). */
export function refuseSocket(socket: Duplex, code: number, reason: string, message: string): void {
  const body = statusBody(code, reason, message);
  socket.end(`HTTP/1.1 ${code} ${STATUS_TEXT[code] ?? 'Error'}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}

const STREAM_PATH = /^\/(exec|attach)\/([^/]+)\/([^/]+)\/([^/]+)\/?$/;
const PORT_FORWARD_PATH = /^\/portForward\/([^/]+)\/([^/]+)\/?$/;

class BadRequest extends Error {}

function bool(q: URLSearchParams, name: string): boolean {
  const v = q.get(name);
  return v === 'true' || v === '1';
}

function positiveInt(q: URLSearchParams, name: string, min: number): number | undefined {
  const v = q.get(name);
  if (v === null || v === '') return undefined;
  if (!/^\d+$/.test(v) || Number(v) < min) throw new BadRequest(`${name} must be an integer >= ${min}, got ${JSON.stringify(v)}`);
  return Number(v);
}

function send(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8' });
  res.end(text.endsWith('\n') ? text : `${text}\n`);
}

export class KubeletServer {
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  #port = 0;

  private constructor(private readonly o: KubeletServerOptions) {
    this.#server = createServer(
      { cert: o.cert, key: o.key, ...(o.clientCa ? { ca: o.clientCa, requestCert: true, rejectUnauthorized: false } : {}) },
      (req, res) => void this.#handle(req, res).catch((err: unknown) => {
        o.logger.warn({ err }, 'kubelet API request failed');
        if (!res.headersSent) send(res, 500, 'internal error');
        else res.destroy();
      }),
    );
    this.#server.on('connection', (s: Socket) => {
      this.#sockets.add(s);
      s.on('close', () => this.#sockets.delete(s));
    });
    this.#server.on('tlsClientError', (_err, s) => s.destroy());
    this.#server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) =>
      void this.#upgrade(req, socket, head).catch((err: unknown) => {
        o.logger.warn({ err }, 'kubelet API upgrade failed');
        socket.destroy();
      }),
    );
  }

  /** What exec and attach answer: a wasm workload has no process to run a command in or attach to. */
  #notSupported(kind: string, ns: string, pod: string, container: string): { code: number; reason: string; message: string } {
    const found = this.o.lookup(ns, pod, container);
    if ('error' in found) return { code: 404, reason: 'NotFound', message: found.error === 'pod' ? `pod ${ns}/${pod} not found on this node` : `container ${container} is not valid for pod ${pod}` };
    const hint = kind === 'exec' ? 'there is no shell or process to run a command in' : 'there is no process with a terminal to attach to';
    return { code: 400, reason: 'BadRequest', message: `${kind} is not supported for wasm workloads: container ${container} of pod ${ns}/${pod} runs WebAssembly (${hint}); read its output with kubectl logs` };
  }

  async #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://kubelet');
    const caller = await this.o.authenticator.authenticate(req);
    if (!caller) return refuseSocket(socket, 401, 'Unauthorized', 'Unauthorized');
    const stream = STREAM_PATH.exec(url.pathname);
    if (stream) {
      const [kind, ns, pod, container] = stream.slice(1).map(decodeURIComponent) as [string, string, string, string];
      const r = this.#notSupported(kind, ns, pod, container);
      this.o.logger.debug({ user: caller.user, kind, ns, pod, container }, 'refused a stream request');
      return refuseSocket(socket, r.code, r.reason, r.message);
    }
    const pf = PORT_FORWARD_PATH.exec(url.pathname);
    if (pf && this.o.portForward) {
      const [ns, pod] = pf.slice(1).map(decodeURIComponent) as [string, string];
      const found = this.o.lookup(ns, pod, '');
      if ('error' in found && found.error === 'pod') return refuseSocket(socket, 404, 'NotFound', `pod ${ns}/${pod} not found on this node`);
      return this.o.portForward(ns, pod, req, socket, head);
    }
    refuseSocket(socket, 404, 'NotFound', `404 page not found (${url.pathname})`);
  }

  static async start(o: KubeletServerOptions): Promise<KubeletServer> {
    const s = new KubeletServer(o);
    await new Promise<void>((resolve, reject) => {
      s.#server.once('error', reject);
      s.#server.listen(o.port, o.bindAddress, () => {
        s.#server.off('error', reject);
        resolve();
      });
    });
    s.#port = (s.#server.address() as AddressInfo).port;
    o.logger.info({ port: s.#port, address: o.bindAddress }, 'kubelet API listening');
    return s;
  }

  get port(): number {
    return this.#port;
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const s of this.#sockets) s.destroy();
    await closed;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://kubelet');
    if (url.pathname === '/healthz' && (req.method === 'GET' || req.method === 'HEAD')) return send(res, 200, 'ok');
    const caller = await this.o.authenticator.authenticate(req);
    if (!caller) return send(res, 401, 'Unauthorized');
    const stream = STREAM_PATH.exec(url.pathname);
    if (stream) {
      const [kind, ns, pod, container] = stream.slice(1).map(decodeURIComponent) as [string, string, string, string];
      const r = this.#notSupported(kind, ns, pod, container);
      res.writeHead(r.code, { 'Content-Type': 'application/json' });
      res.end(statusBody(r.code, r.reason, r.message));
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'method not allowed');
    const m = /^\/containerLogs\/([^/]+)\/([^/]+)\/([^/]+)\/?$/.exec(url.pathname);
    if (!m) return send(res, 404, `404 page not found (${url.pathname})`);
    const [ns, pod, container] = [m[1]!, m[2]!, m[3]!].map(decodeURIComponent) as [string, string, string];
    this.o.logger.debug({ user: caller.user, via: caller.via, ns, pod, container }, 'container logs');
    let q: { follow: boolean; tailLines?: number; timestamps: boolean; sinceMs?: number; limitBytes?: number };
    try {
      const sinceSeconds = positiveInt(url.searchParams, 'sinceSeconds', 1);
      const sinceTime = url.searchParams.get('sinceTime');
      let sinceMs = sinceSeconds !== undefined ? Date.now() - sinceSeconds * 1000 : undefined;
      if (sinceTime) {
        const t = Date.parse(sinceTime);
        if (Number.isNaN(t)) throw new BadRequest(`sinceTime must be an RFC 3339 time, got ${JSON.stringify(sinceTime)}`);
        sinceMs = Math.max(sinceMs ?? t, t);
      }
      const tailLines = positiveInt(url.searchParams, 'tailLines', 0);
      const limitBytes = positiveInt(url.searchParams, 'limitBytes', 1);
      q = { follow: bool(url.searchParams, 'follow'), timestamps: bool(url.searchParams, 'timestamps'), ...(tailLines !== undefined ? { tailLines } : {}), ...(sinceMs !== undefined ? { sinceMs } : {}), ...(limitBytes !== undefined ? { limitBytes } : {}) };
    } catch (err) {
      if (err instanceof BadRequest) return send(res, 400, err.message);
      throw err;
    }
    const found = this.o.lookup(ns, pod, container);
    if ('error' in found) return send(res, 404, found.error === 'pod' ? `pod ${ns}/${pod} not found on this node` : `container ${container} is not valid for pod ${pod}`);
    if (bool(url.searchParams, 'previous')) return send(res, 400, `previous terminated container "${container}" in pod "${pod}" not found`);
    if (!found.logId) {
      if (found.neverStarted) return send(res, 400, `container "${container}" in pod "${pod}" is terminated: it never started (${found.neverStarted})`);
      return send(res, 400, `container "${container}" in pod "${pod}" is waiting to start: ${found.waitingReason ?? 'ContainerCreating'}`);
    }
    await this.#stream(req, res, found.logId, { ...q, follow: q.follow && found.running });
  }

  async #stream(req: IncomingMessage, res: ServerResponse, logId: string, q: { follow: boolean; tailLines?: number; timestamps: boolean; sinceMs?: number; limitBytes?: number }): Promise<void> {
    const abort = new AbortController();
    const onClose = () => abort.abort();
    req.on('close', onClose);
    res.on('close', onClose);
    res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-cache, private' });
    if (q.follow) res.flushHeaders();
    let left = q.limitBytes ?? Infinity;
    const line = (r: LogRecord) => `${q.timestamps ? `${new Date(r.time).toISOString()} ` : ''}${r.msg}\n`;
    try {
      for await (const r of this.o.logs.read(logId, { follow: q.follow, signal: abort.signal, ...(q.tailLines !== undefined ? { tailLines: q.tailLines } : {}), ...(q.sinceMs !== undefined ? { sinceMs: q.sinceMs } : {}) })) {
        let chunk = Buffer.from(line(r), 'utf8');
        if (chunk.length > left) chunk = chunk.subarray(0, left);
        left -= chunk.length;
        if (!res.write(chunk)) await new Promise<void>((resolve) => {
          res.once('drain', resolve);
          abort.signal.addEventListener('abort', () => resolve(), { once: true });
        });
        if (left <= 0 || abort.signal.aborted) break;
      }
    } finally {
      req.off('close', onClose);
      abort.abort();
      if (!res.destroyed) res.end();
    }
  }
}
