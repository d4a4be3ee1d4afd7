/**
 * A tiny HTTP proxy in front of a test registry, for tests that need to count requests, tamper
 * with a blob on the wire, or hold a blob download until released. Test support only.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';

export type BlobMode = 'pass' | 'tamper' | 'stall';

export interface RegistryProxy {
  /** `127.0.0.1:<port>`: use it as the registry part of references. */
  host: string;
  /** GET requests seen, by kind. */
  counts: { manifests: number; blobs: number };
  blobMode: BlobMode;
  /** Lets every stalled blob request go on. */
  release(): void;
  close(): Promise<void>;
}

const HOP_HEADERS = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-encoding', 'content-length', 'host']);

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

export async function startRegistryProxy(targetUrl: string): Promise<RegistryProxy> {
  let waiting: Array<() => void> = [];
  const proxy = {
    host: '',
    counts: { manifests: 0, blobs: 0 },
    blobMode: 'pass' as BlobMode,
    release() {
      const w = waiting;
      waiting = [];
      for (const go of w) go();
    },
    close: async () => {},
  };
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const path = req.url ?? '/';
    const isBlob = req.method === 'GET' && /\/blobs\/[a-z0-9]+:/.test(path);
    if (req.method === 'GET' && path.includes('/manifests/')) proxy.counts.manifests++;
    if (isBlob) proxy.counts.blobs++;
    const body = await readBody(req);
    if (isBlob && proxy.blobMode === 'stall') {
      await new Promise<void>((resolve) => {
        waiting.push(resolve);
        res.once('close', resolve);
      });
      if (res.destroyed || res.writableEnded) return;
    }
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (!HOP_HEADERS.has(k) && typeof v === 'string') headers[k] = v;
    const upstream = await fetch(new URL(path, targetUrl), {
      method: req.method ?? 'GET',
      headers,
      ...(body.length ? { body: new Uint8Array(body) } : {}),
      redirect: 'manual',
    });
    const data = Buffer.from(await upstream.arrayBuffer());
    if (isBlob && proxy.blobMode === 'tamper' && upstream.ok && data.length > 0) data[data.length - 1]! ^= 0xff;
    const out: Record<string, string> = {};
    upstream.headers.forEach((v, k) => {
      if (!HOP_HEADERS.has(k)) out[k] = v;
    });
    if (req.method === 'HEAD') {
      const len = upstream.headers.get('content-length');
      if (len) out['content-length'] = len;
      res.writeHead(upstream.status, out).end();
      return;
    }
    out['content-length'] = String(data.length);
    res.writeHead(upstream.status, out).end(data);
  };
  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(502).end(String(err));
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  proxy.host = `127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  proxy.close = () =>
    new Promise<void>((resolve) => {
      proxy.release();
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return proxy;
}
