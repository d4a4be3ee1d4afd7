/**
 * The kubelet HTTPS API, as much of it as `kubectl logs` needs through the API server's log proxy:
 *   GET /healthz                                      → ok (no credentials needed)
 *   GET /containerLogs/{namespace}/{pod}/{container}  → the container's log, from the LogStore
 *       follow, tailLines, timestamps, sinceSeconds, sinceTime, limitBytes (previous: 400)
 * Everything but /healthz needs a caller the authenticator accepts.
 */
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Logger } from 'pino';
import type { LogRecord, LogStore } from '../host/index.ts';
import type { KubeletAuthenticator } from './auth.ts';
import type { LogTarget } from './pod-controller.ts';

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
}

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
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'method not allowed');
    if (url.pathname === '/healthz') return send(res, 200, 'ok');
    const caller = await this.o.authenticator.authenticate(req);
    if (!caller) return send(res, 401, 'Unauthorized');
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
    if (!found.logId) return send(res, 400, `container "${container}" in pod "${pod}" is waiting to start: ${found.waitingReason ?? 'ContainerCreating'}`);
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
