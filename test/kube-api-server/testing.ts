/**
 * Raw HTTP helpers for this folder's own tests: one request with a JSON answer, and a watch
 * stream read event by event.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';

export interface RawResponse {
  status: number;
  headers: IncomingMessage['headers'];
  text: string;
  /** The body parsed as JSON (undefined when it is not JSON). */
  json: any;
}

export interface RawRequestOptions {
  method?: string;
  body?: unknown;
  contentType?: string;
  accept?: string;
  token?: string | null;
  ca?: string;
}

export function rawRequest(base: string, path: string, opts: RawRequestOptions = {}): Promise<RawResponse> {
  const url = new URL(path, base);
  const headers: Record<string, string> = {};
  if (opts.token) headers.Authorization = `Bearer ${opts.token}`;
  if (opts.accept) headers.Accept = opts.accept;
  let payload: string | undefined;
  if (opts.body !== undefined) {
    payload = typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
    headers['Content-Type'] = opts.contentType ?? 'application/json';
    // Node does not frame DELETE bodies by default: say how long it is.
    headers['Content-Length'] = String(Buffer.byteLength(payload));
  }
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(url, { method: opts.method ?? 'GET', headers, ca: opts.ca, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
    });
    req.on('error', reject);
    req.end(payload);
  });
}

export interface WatchEventLine {
  type: string;
  object: any;
}

export interface RawWatch {
  status: number;
  /** The next event; rejects after `timeoutMs` or when the stream ended first. */
  next(timeoutMs?: number): Promise<WatchEventLine>;
  /** Resolves when the server ends the stream. */
  ended: Promise<void>;
  close(): void;
}

export function rawWatch(base: string, path: string, token?: string, accept?: string): Promise<RawWatch> {
  const url = new URL(path, base);
  const headers: Record<string, string> = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  if (accept) headers.Accept = accept;
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { headers, agent: false }, (res) => {
      const queue: WatchEventLine[] = [];
      const waiters: Array<(e: WatchEventLine | undefined) => void> = [];
      let buf = '';
      let done = false;
      let endResolve!: () => void;
      const ended = new Promise<void>((r) => (endResolve = r));
      const push = (e: WatchEventLine | undefined) => {
        const w = waiters.shift();
        if (w) w(e);
        else if (e) queue.push(e);
      };
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buf += chunk;
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (line) push(JSON.parse(line) as WatchEventLine);
        }
      });
      const finish = () => {
        if (done) return;
        done = true;
        endResolve();
        while (waiters.length) waiters.shift()!(undefined);
      };
      res.on('end', finish);
      res.on('close', finish);
      res.on('error', finish);
      resolve({
        status: res.statusCode ?? 0,
        ended,
        next(timeoutMs = 3000) {
          const queued = queue.shift();
          if (queued) return Promise.resolve(queued);
          if (done) return Promise.reject(new Error('watch ended'));
          return new Promise((ok, fail) => {
            const timer = setTimeout(() => {
              const i = waiters.indexOf(waiter);
              if (i >= 0) waiters.splice(i, 1);
              fail(new Error(`no watch event within ${timeoutMs} ms`));
            }, timeoutMs);
            const waiter = (e: WatchEventLine | undefined) => {
              clearTimeout(timer);
              if (e) ok(e);
              else fail(new Error('watch ended'));
            };
            waiters.push(waiter);
          });
        },
        close() {
          req.destroy();
        },
      });
    });
    req.on('error', reject);
    req.end();
  });
}

export interface StubKubeletRequest {
  path: string;
  query: URLSearchParams;
  authorization?: string;
  /** Common name of the client certificate presented, if any. */
  clientCN?: string;
}

export interface StubKubelet {
  port: number;
  requests: StubKubeletRequest[];
  close(): Promise<void>;
}

/**
 * A tiny HTTPS kubelet serving `/containerLogs/{ns}/{pod}/{container}`: it answers with
 * `lines` (each prefixed with the container name) and, with `follow=true`, sends
 * `followLines` more at `intervalMs` before ending. Unknown containers get 404.
 */
export async function startStubKubelet(opts: { cert: string; key: string; lines: string[]; followLines?: string[]; intervalMs?: number; containers?: string[] }): Promise<StubKubelet> {
  const { createServer } = await import('node:https');
  const requests: StubKubeletRequest[] = [];
  const server = createServer({ cert: opts.cert, key: opts.key, requestCert: true, rejectUnauthorized: false }, (req, res) => {
    const url = new URL(req.url ?? '/', 'https://localhost');
    const peer = (req.socket as import('node:tls').TLSSocket).getPeerCertificate();
    requests.push({ path: url.pathname, query: url.searchParams, authorization: req.headers.authorization, clientCN: peer?.subject?.CN as string | undefined });
    const m = /^\/containerLogs\/([^/]+)\/([^/]+)\/([^/]+)$/.exec(url.pathname);
    if (!m || (opts.containers && !opts.containers.includes(decodeURIComponent(m[3]!)))) {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end(`container not found (${url.pathname})`);
      return;
    }
    const container = decodeURIComponent(m[3]!);
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    for (const l of opts.lines) res.write(`${container}: ${l}\n`);
    const more = url.searchParams.get('follow') === 'true' ? [...(opts.followLines ?? [])] : [];
    const tick = () => {
      const l = more.shift();
      if (l === undefined || res.destroyed) return res.end();
      res.write(`${container}: ${l}\n`);
      setTimeout(tick, opts.intervalMs ?? 50);
    };
    tick();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as import('node:net').AddressInfo).port,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** A Node object pointing at a kubelet on 127.0.0.1:port. */
export function nodeObject(name: string, port: number, address = '127.0.0.1'): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name },
    status: {
      addresses: address ? [{ type: 'InternalIP', address }, { type: 'Hostname', address: name }] : [],
      daemonEndpoints: { kubeletEndpoint: { Port: port } },
      conditions: [{ type: 'Ready', status: 'True' }],
    },
  };
}
