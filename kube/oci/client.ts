/**
 * An OCI distribution client over `fetch`: manifests, blobs (streamed and digest-checked) and
 * monolithic uploads, with Basic and Bearer auth (see auth.ts).
 *
 * Plain HTTP is used for loopback registries and those listed in `insecureRegistries`; every other
 * registry is reached over HTTPS. Redirects are followed by hand so that credentials never follow
 * a redirect to another origin and HTTPS is never downgraded to HTTP.
 */
import type { Logger } from 'pino';
import { Authenticator } from './auth.ts';
import type { ResolvedCredentials } from './credentials.ts';
import { DigestVerifier, sha256Digest, digestWithAlgorithm } from './digest.ts';
import { RegistryError, isRegistryError } from '../errors.ts';
import { MANIFEST_ACCEPT, type Descriptor } from './manifest.ts';
import { isDigest, registryEndpoint } from './reference.ts';

export interface RegistryClientOptions {
  /** Registry as in the image reference (`docker.io`, `127.0.0.1:5000`). */
  registry: string;
  credentials?: ResolvedCredentials | undefined;
  /** Hosts (`host` or `host:port`) that may be reached over plain HTTP. Loopback always may. */
  insecureRegistries?: readonly string[];
  /** Limit for one small request (manifest, token, upload control), ms. */
  requestTimeoutMs: number;
  /** Limit for one blob download or upload, ms. */
  blobTimeoutMs: number;
  maxManifestBytes: number;
  maxBlobBytes: number;
  logger: Logger;
  userAgent: string;
  /** Aborts every request of this client. */
  signal?: AbortSignal | undefined;
}

export interface FetchedManifest {
  bytes: Uint8Array;
  /** sha256 of the bytes (or the pinned digest they were checked against). */
  digest: string;
  contentType: string | undefined;
}

const MAX_REDIRECTS = 5;
const MAX_ERROR_BODY = 64 * 1024;

/** `host` without its port (`[::1]:5000` → `[::1]`). */
export function hostWithoutPort(hostPort: string): string {
  return hostPort.replace(/:\d+$/, '').toLowerCase();
}

export function isLoopbackHost(hostPort: string): boolean {
  const host = hostWithoutPort(hostPort);
  return host === 'localhost' || host === '[::1]' || host === '::1' || /^127(?:\.\d{1,3}){3}$/.test(host);
}

/** May `hostPort` be reached over plain HTTP? Entries match `host:port` exactly, or `host` on any port. */
export function allowsPlainHttp(hostPort: string, insecure: readonly string[] = []): boolean {
  if (isLoopbackHost(hostPort)) return true;
  const target = hostPort.toLowerCase();
  return insecure.some((entry) => {
    const e = entry.toLowerCase().replace(/^https?:\/\//, '').replace(/\/+$/, '');
    return e === target || e === hostWithoutPort(target);
  });
}

export function pullScope(repository: string): string {
  return `repository:${repository}:pull`;
}
export function pushScope(repository: string): string {
  return `repository:${repository}:pull,push`;
}

interface SendInit {
  method: 'GET' | 'HEAD' | 'POST' | 'PUT';
  headers?: Record<string, string>;
  body?: Uint8Array;
  scope: string;
}

function describeFetchError(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (err instanceof Error ? err.message : String(err));
}

export class RegistryClient {
  readonly registry: string;
  readonly baseUrl: URL;
  readonly #o: RegistryClientOptions;
  readonly #auth: Authenticator;
  readonly #insecure: readonly string[];

  constructor(options: RegistryClientOptions) {
    this.#o = options;
    this.registry = options.registry;
    this.#insecure = options.insecureRegistries ?? [];
    const endpoint = registryEndpoint(options.registry);
    this.baseUrl = new URL(`${allowsPlainHttp(endpoint, this.#insecure) ? 'http' : 'https'}://${endpoint}/`);
    this.#auth = new Authenticator({
      registry: options.registry,
      credentials: options.credentials,
      allowPlainRealm: (url) => allowsPlainHttp(url.host, this.#insecure),
      logger: options.logger,
      fetchToken: async (url, init) => {
        const res = await this.#op(`token request to ${url.origin}`, this.#o.requestTimeoutMs, async (signal) => {
          const r = await this.#fetch(url, { method: init.method, headers: init.headers, ...(init.body ? { body: init.body } : {}) }, signal);
          const text = new TextDecoder().decode(await readLimited(r, MAX_ERROR_BODY * 16, `token answer from ${url.origin}`));
          return { status: r.status, text };
        });
        return { status: res.status, json: async () => JSON.parse(res.text) as unknown };
      },
    });
  }

  /** GET a manifest by tag or digest; a pinned digest is verified. */
  async getManifest(repository: string, reference: string): Promise<FetchedManifest> {
    const what = `manifest ${this.registry}/${repository}:${reference}`;
    return this.#op(what, this.#o.requestTimeoutMs, async (signal) => {
      const res = await this.#send(`v2/${repository}/manifests/${reference}`, { method: 'GET', headers: { accept: MANIFEST_ACCEPT }, scope: pullScope(repository) }, signal, what);
      if (!res.ok) throw await this.#fail(res, what);
      const bytes = await readLimited(res, this.#o.maxManifestBytes, what);
      let digest: string;
      if (isDigest(reference)) {
        digest = digestWithAlgorithm(reference, bytes);
        if (digest !== reference) throw new RegistryError('DIGEST_MISMATCH', `${what}: the registry sent a manifest whose digest is ${digest}`);
      } else {
        digest = sha256Digest(bytes);
        const announced = res.headers.get('docker-content-digest');
        if (announced?.startsWith('sha256:') && announced !== digest) {
          throw new RegistryError('DIGEST_MISMATCH', `${what}: the registry announced digest ${announced} but the manifest hashes to ${digest}`);
        }
      }
      return { bytes, digest, contentType: res.headers.get('content-type') ?? undefined };
    });
  }

  /** Downloads a blob, checking its size and digest while it streams. */
  async getBlob(repository: string, descriptor: Pick<Descriptor, 'digest' | 'size'>): Promise<Uint8Array> {
    const what = `blob ${descriptor.digest} of ${this.registry}/${repository}`;
    if (descriptor.size > this.#o.maxBlobBytes) {
      throw new RegistryError('TOO_LARGE', `${what} is ${descriptor.size} bytes, more than the limit of ${this.#o.maxBlobBytes}`);
    }
    return this.#op(what, this.#o.blobTimeoutMs, async (signal) => {
      const res = await this.#send(`v2/${repository}/blobs/${descriptor.digest}`, { method: 'GET', scope: pullScope(repository) }, signal, what);
      if (!res.ok) throw await this.#fail(res, what);
      const verifier = new DigestVerifier(descriptor.digest, descriptor.size, what);
      const bytes = await readLimited(res, this.#o.maxBlobBytes, what, verifier);
      verifier.finish();
      return bytes;
    });
  }

  async blobExists(repository: string, digest: string): Promise<boolean> {
    const what = `blob ${digest} of ${this.registry}/${repository}`;
    return this.#op(what, this.#o.requestTimeoutMs, async (signal) => {
      const res = await this.#send(`v2/${repository}/blobs/${digest}`, { method: 'HEAD', scope: pushScope(repository) }, signal, what);
      await res.body?.cancel();
      if (res.status === 404) return false;
      if (!res.ok) throw await this.#fail(res, what);
      return true;
    });
  }

  /** Monolithic upload: POST opens an upload session, one PUT with `?digest=` sends every byte. */
  async uploadBlob(repository: string, bytes: Uint8Array, digest: string): Promise<void> {
    const what = `upload of blob ${digest} to ${this.registry}/${repository}`;
    await this.#op(what, this.#o.blobTimeoutMs, async (signal) => {
      const started = await this.#send(`v2/${repository}/blobs/uploads/`, { method: 'POST', scope: pushScope(repository) }, signal, what);
      if (started.status !== 202) throw await this.#fail(started, what);
      await started.body?.cancel();
      const location = started.headers.get('location');
      if (!location) throw new RegistryError('REGISTRY_ERROR', `${what}: the registry opened an upload without a Location`);
      const target = new URL(location, new URL(`v2/${repository}/blobs/uploads/`, this.baseUrl));
      target.searchParams.set('digest', digest);
      const done = await this.#send(
        target,
        { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: bytes, scope: pushScope(repository) },
        signal,
        what,
      );
      if (done.status !== 201) throw await this.#fail(done, what);
      await done.body?.cancel();
    });
  }

  /** PUT a manifest under a tag (or its digest). Returns its digest, checked against the registry's. */
  async putManifest(repository: string, reference: string, bytes: Uint8Array, mediaType: string): Promise<string> {
    const what = `manifest ${this.registry}/${repository}:${reference}`;
    const digest = sha256Digest(bytes);
    return this.#op(what, this.#o.requestTimeoutMs, async (signal) => {
      const res = await this.#send(
        `v2/${repository}/manifests/${reference}`,
        { method: 'PUT', headers: { 'content-type': mediaType }, body: bytes, scope: pushScope(repository) },
        signal,
        what,
      );
      if (res.status !== 201 && res.status !== 200) throw await this.#fail(res, what);
      await res.body?.cancel();
      const announced = res.headers.get('docker-content-digest');
      if (announced && announced !== digest) throw new RegistryError('DIGEST_MISMATCH', `${what}: the registry stored it as ${announced}, we computed ${digest}`);
      return digest;
    });
  }

  /** Runs one operation under a timeout and the client's signal, mapping transport failures. */
  async #op<T>(what: string, timeoutMs: number, run: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = this.#o.signal ? AbortSignal.any([this.#o.signal, timeout]) : timeout;
    try {
      return await run(signal);
    } catch (err) {
      if (this.#o.signal?.aborted) throw new RegistryError('ABORTED', `${what}: aborted`, { cause: this.#o.signal.reason });
      if (timeout.aborted) throw new RegistryError('UNREACHABLE', `${what}: no complete answer within ${timeoutMs} ms`, { cause: err });
      if (isRegistryError(err)) throw err;
      const why = describeFetchError(err);
      const hint = this.baseUrl.protocol === 'https:' && /SSL|TLS|EPROTO/i.test(why) ? '; if the registry speaks plain HTTP, list it in insecureRegistries (wasmlet push --insecure)' : '';
      throw new RegistryError('UNREACHABLE', `${what}: cannot reach ${this.baseUrl.origin} (${why})${hint}`, { cause: err });
    }
  }

  async #fetch(url: URL, init: { method: string; headers: Record<string, string>; body?: Uint8Array | string }, signal: AbortSignal): Promise<Response> {
    return fetch(url, {
      method: init.method,
      headers: { 'user-agent': this.#o.userAgent, ...init.headers },
      // Our byte arrays are never backed by a SharedArrayBuffer, which is all the cast hides.
      ...(init.body !== undefined ? { body: init.body as string | Uint8Array<ArrayBuffer> } : {}),
      redirect: 'manual',
      signal,
    });
  }

  /** One request with auth (one challenge round) and hand-followed redirects. */
  async #send(path: string | URL, init: SendInit, signal: AbortSignal, what: string): Promise<Response> {
    let url = typeof path === 'string' ? new URL(path, this.baseUrl) : path;
    let auth = await this.#auth.prepare(init.scope, signal);
    let challenged = false;
    for (let hop = 0; ; ) {
      const sameOrigin = url.origin === this.baseUrl.origin;
      const headers: Record<string, string> = { ...init.headers };
      if (auth && sameOrigin) headers.authorization = auth;
      const res = await this.#fetch(url, { method: init.method, headers, ...(init.body ? { body: init.body } : {}) }, signal);
      if (res.status === 401 && sameOrigin) {
        await res.body?.cancel();
        auth = await this.#auth.challenge(res.headers.get('www-authenticate'), init.scope, challenged, signal);
        challenged = true;
        continue;
      }
      if (res.status >= 300 && res.status < 400 && res.status !== 304) {
        const location = res.headers.get('location');
        await res.body?.cancel();
        if (!location) throw new RegistryError('REGISTRY_ERROR', `${what}: redirect ${res.status} without a Location`, { status: res.status });
        if (++hop > MAX_REDIRECTS) throw new RegistryError('REGISTRY_ERROR', `${what}: more than ${MAX_REDIRECTS} redirects`);
        const next = new URL(location, url);
        if (next.protocol === 'http:' && url.protocol === 'https:' && !allowsPlainHttp(next.host, this.#insecure)) {
          throw new RegistryError('REGISTRY_ERROR', `${what}: refusing a redirect from HTTPS to plain HTTP (${next.origin})`);
        }
        if (next.protocol !== 'http:' && next.protocol !== 'https:') throw new RegistryError('REGISTRY_ERROR', `${what}: redirect to ${next.protocol} refused`);
        this.#o.logger.debug({ from: url.origin, to: next.origin, status: res.status }, 'registry redirect');
        url = next;
        continue;
      }
      return res;
    }
  }

  /** The RegistryError for a refused request, with the registry's own error codes in the message. */
  async #fail(res: Response, what: string): Promise<RegistryError> {
    let detail = '';
    try {
      const text = new TextDecoder().decode(await readLimited(res, MAX_ERROR_BODY, what));
      const body = JSON.parse(text) as { errors?: Array<{ code?: string; message?: string }> };
      detail = (body.errors ?? []).map((e) => [e.code, e.message].filter(Boolean).join(': ')).join('; ');
    } catch {
      // Not the spec's JSON error body: the status says enough.
    }
    const suffix = detail ? ` (${detail})` : '';
    const status = res.status;
    if (status === 404) return new RegistryError('NOT_FOUND', `${what}: not found${suffix}`, { status });
    if (status === 401 || status === 403) return new RegistryError('UNAUTHORIZED', `${what}: access denied (HTTP ${status})${suffix}`, { status });
    if (status === 429) return new RegistryError('REGISTRY_ERROR', `${what}: the registry is rate limiting us (HTTP 429)${suffix}`, { status });
    return new RegistryError('REGISTRY_ERROR', `${what}: the registry answered HTTP ${status}${suffix}`, { status });
  }
}

/** Reads a response body up to `limit` bytes (TOO_LARGE past it), feeding `verifier` as it goes. */
export async function readLimited(res: Response, limit: number, what: string, verifier?: DigestVerifier): Promise<Uint8Array> {
  const announced = Number(res.headers.get('content-length') ?? Number.NaN);
  if (announced > limit) {
    await res.body?.cancel();
    throw new RegistryError('TOO_LARGE', `${what}: ${announced} bytes, more than the limit of ${limit}`);
  }
  if (!res.body) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    total += chunk.byteLength;
    if (total > limit) throw new RegistryError('TOO_LARGE', `${what}: more than the limit of ${limit} bytes`);
    verifier?.update(chunk);
    chunks.push(chunk);
  }
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(total);
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.byteLength;
  }
  return out;
}
