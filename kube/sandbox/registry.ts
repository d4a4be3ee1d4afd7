/**
 * The sandbox's OCI registry: the part of the distribution API that pulling and `wasmlet push` use
 * (`/v2/`, manifests by tag or digest, blobs, monolithic and chunked blob uploads), in memory, on
 * loopback, without authentication. Uploads are digest-checked and bounded (one blob, one
 * manifest, everything held), so it is a registry to try things on, not to keep images in.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Logger } from 'pino';

export interface SandboxRegistryOptions {
  /** Port on 127.0.0.1; 0 picks a free one. */
  port: number;
  logger: Logger;
  /** Largest blob accepted. Default 64 MiB. */
  maxBlobBytes?: number;
  /** Everything held, at most. Default 512 MiB. */
  maxTotalBytes?: number;
}

const NAME = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;
const MAX_MANIFEST = 4 * 1024 * 1024;

function sha256(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

class TooLarge extends Error {}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        req.destroy();
        reject(new TooLarge(`more than ${limit} bytes`));
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** An OCI distribution error answer. */
function fail(res: ServerResponse, status: number, code: string, message: string): void {
  const body = JSON.stringify({ errors: [{ code, message }] });
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

export class SandboxRegistry {
  readonly #server: Server;
  readonly #blobs = new Map<string, Buffer>();
  readonly #manifests = new Map<string, { bytes: Buffer; mediaType: string }>();
  /** `repository:tag` → manifest digest. */
  readonly #tags = new Map<string, string>();
  readonly #uploads = new Map<string, Buffer[]>();
  readonly #sockets = new Set<Socket>();
  readonly #maxBlob: number;
  readonly #maxTotal: number;
  #held = 0;

  private constructor(private readonly o: SandboxRegistryOptions) {
    this.#maxBlob = o.maxBlobBytes ?? 64 * 1024 * 1024;
    this.#maxTotal = o.maxTotalBytes ?? 512 * 1024 * 1024;
    this.#server = createServer((req, res) =>
      void this.#handle(req, res).catch((err: unknown) => {
        if (err instanceof TooLarge) return fail(res, 413, 'SIZE_INVALID', err.message);
        o.logger.warn({ err }, 'registry request failed');
        if (!res.headersSent) fail(res, 500, 'UNKNOWN', (err as Error).message);
      }),
    );
    this.#server.on('connection', (s: Socket) => {
      this.#sockets.add(s);
      s.on('close', () => this.#sockets.delete(s));
    });
  }

  static async start(o: SandboxRegistryOptions): Promise<SandboxRegistry> {
    const r = new SandboxRegistry(o);
    await new Promise<void>((resolve, reject) => {
      r.#server.once('error', reject);
      r.#server.listen(o.port, '127.0.0.1', () => resolve());
    });
    return r;
  }

  /** `127.0.0.1:<port>`: the registry part of image references. */
  get host(): string {
    return `127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const s of this.#sockets) s.destroy();
    await closed;
  }

  #hold(bytes: number): void {
    if (this.#held + bytes > this.#maxTotal) throw new TooLarge(`the sandbox registry holds at most ${this.#maxTotal} bytes`);
    this.#held += bytes;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://registry');
    const method = req.method ?? 'GET';
    res.setHeader('Docker-Distribution-API-Version', 'registry/2.0');
    if (url.pathname === '/v2/' || url.pathname === '/v2') {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      return void res.end('{}');
    }
    const m = /^\/v2\/(.+)\/(manifests|blobs)\/(.+)$/.exec(url.pathname);
    if (!m) return fail(res, 404, 'NOT_FOUND', `${url.pathname} is not served`);
    const [, name, kind, rest] = m as unknown as [string, string, string, string];
    if (!NAME.test(name)) return fail(res, 400, 'NAME_INVALID', `invalid repository name ${JSON.stringify(name)}`);
    if (kind === 'manifests') return this.#manifest(req, res, method, name, rest);
    if (rest === 'uploads/' || rest === 'uploads') {
      if (method !== 'POST') return fail(res, 405, 'UNSUPPORTED', `${method} on uploads`);
      const id = randomUUID();
      const digest = url.searchParams.get('digest');
      if (digest) return this.#finishUpload(res, name, [await readBody(req, this.#maxBlob)], digest);
      this.#uploads.set(id, []);
      res.writeHead(202, { Location: `/v2/${name}/blobs/uploads/${id}`, 'Docker-Upload-UUID': id, Range: '0-0', 'Content-Length': 0 });
      return void res.end();
    }
    const up = /^uploads\/([0-9a-f-]{36})$/.exec(rest);
    if (up) {
      const parts = this.#uploads.get(up[1]!);
      if (!parts) return fail(res, 404, 'BLOB_UPLOAD_UNKNOWN', 'upload unknown');
      const body = await readBody(req, this.#maxBlob - parts.reduce((n, p) => n + p.length, 0));
      if (body.length) parts.push(body);
      if (method === 'PATCH') {
        const size = parts.reduce((n, p) => n + p.length, 0);
        res.writeHead(202, { Location: `/v2/${name}/blobs/uploads/${up[1]}`, Range: `0-${Math.max(0, size - 1)}`, 'Content-Length': 0 });
        return void res.end();
      }
      if (method !== 'PUT') return fail(res, 405, 'UNSUPPORTED', `${method} on an upload`);
      this.#uploads.delete(up[1]!);
      return this.#finishUpload(res, name, parts, url.searchParams.get('digest') ?? '');
    }
    if (!DIGEST.test(rest)) return fail(res, 400, 'DIGEST_INVALID', `invalid digest ${JSON.stringify(rest)}`);
    const blob = this.#blobs.get(rest);
    if (!blob) return fail(res, 404, 'BLOB_UNKNOWN', `blob ${rest} unknown to registry`);
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': blob.length, 'Docker-Content-Digest': rest });
    res.end(method === 'HEAD' ? undefined : blob);
  }

  #finishUpload(res: ServerResponse, name: string, parts: Buffer[], digest: string): void {
    if (!DIGEST.test(digest)) return fail(res, 400, 'DIGEST_INVALID', 'a sha256 digest is required to finish an upload');
    const bytes = Buffer.concat(parts);
    if (sha256(bytes) !== digest) return fail(res, 400, 'DIGEST_INVALID', `the uploaded content does not match digest ${digest}`);
    if (!this.#blobs.has(digest)) {
      this.#hold(bytes.length);
      this.#blobs.set(digest, bytes);
    }
    res.writeHead(201, { Location: `/v2/${name}/blobs/${digest}`, 'Docker-Content-Digest': digest, 'Content-Length': 0 });
    res.end();
  }

  async #manifest(req: IncomingMessage, res: ServerResponse, method: string, name: string, reference: string): Promise<void> {
    if (!TAG.test(reference) && !DIGEST.test(reference)) return fail(res, 400, 'TAG_INVALID', `invalid reference ${JSON.stringify(reference)}`);
    if (method === 'PUT') {
      const bytes = await readBody(req, MAX_MANIFEST);
      let doc: { layers?: { digest?: string }[]; config?: { digest?: string } };
      try {
        doc = JSON.parse(bytes.toString('utf8')) as typeof doc;
      } catch {
        return fail(res, 400, 'MANIFEST_INVALID', 'the manifest is not JSON');
      }
      const missing = [...(doc.layers ?? []), ...(doc.config ? [doc.config] : [])].map((d) => d.digest ?? '').find((d) => !this.#blobs.has(d));
      if (missing !== undefined) return fail(res, 400, 'MANIFEST_BLOB_UNKNOWN', `blob ${missing} is not in the registry`);
      const digest = sha256(bytes);
      if (DIGEST.test(reference) && reference !== digest) return fail(res, 400, 'DIGEST_INVALID', `the manifest does not match digest ${reference}`);
      this.#hold(bytes.length);
      this.#manifests.set(digest, { bytes, mediaType: String(req.headers['content-type'] ?? 'application/vnd.oci.image.manifest.v1+json') });
      if (!DIGEST.test(reference)) this.#tags.set(`${name}:${reference}`, digest);
      this.o.logger.info({ image: `${this.host}/${name}:${reference}`, digest }, 'image pushed to the sandbox registry');
      res.writeHead(201, { Location: `/v2/${name}/manifests/${digest}`, 'Docker-Content-Digest': digest, 'Content-Length': 0 });
      return void res.end();
    }
    if (method !== 'GET' && method !== 'HEAD') return fail(res, 405, 'UNSUPPORTED', `${method} on a manifest`);
    const digest = DIGEST.test(reference) ? reference : this.#tags.get(`${name}:${reference}`);
    const found = digest ? this.#manifests.get(digest) : undefined;
    if (!digest || !found) return fail(res, 404, 'MANIFEST_UNKNOWN', `manifest ${name}:${reference} unknown to the sandbox registry`);
    res.writeHead(200, { 'Content-Type': found.mediaType, 'Content-Length': found.bytes.length, 'Docker-Content-Digest': digest });
    res.end(method === 'HEAD' ? undefined : found.bytes);
  }
}
