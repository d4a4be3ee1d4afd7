/**
 * The HTTP client capability provider (`wasmlet:httpclient`, aliases `wascc:http_client` and
 * `wasmcloud:httpclient`): outbound requests with waSCC's shapes. Operation `PerformRequest`
 * takes wascc-codec's `Request {method, path, queryString, header, body}`, where `path` is the
 * absolute `http://` or `https://` URL (`queryString`, when not empty, becomes its query), and
 * answers `Response {statusCode, status, header, body}` (repeated response headers joined
 * with ", ").
 *
 * Secure by default: a link reaches only the hosts its `ALLOWED_HOSTS` names (nothing until it
 * names some; see allowed-hosts.ts), every hop of a redirect included; redirects are answered to
 * the actor as they are unless the link sets `FOLLOW_REDIRECTS=true`; every request has a
 * deadline (body included) and a response-size cap, read as a stream so a large or endless
 * answer is cut off, not buffered.
 */
import { STATUS_CODES } from 'node:http';
import { pino, type Logger } from 'pino';
import { z } from 'zod';
import { HTTP_CLIENT, OptionsError, encode, normalizeLinkName } from '../../host/index.ts';
import type { CapabilityProvider, LinkDefinition, ProviderCall, ProviderContext } from '../../host/index.ts';
import { LinkError, OperationError } from '../errors.ts';
import { bytesField, decodeRequest, stringField, stringMapField, unknownOperation } from '../payload.ts';
import { hostAllowed, isOpen, parseAllowedHosts, type HostPattern } from './allowed-hosts.ts';

export const OP_PERFORM_REQUEST = 'PerformRequest';

const optionsSchema = z
  .object({
    /** Deadline of one request, redirects and body included, ms. Default 10000. A link's TIMEOUT_MS may lower it. */
    timeoutMs: z.number().int().positive().max(300_000).default(10_000),
    /** Largest response body accepted, bytes. Default 4 MiB; a link's MAX_RESPONSE_BYTES may lower it. */
    maxResponseBytes: z.number().int().positive().default(4 * 1024 * 1024),
    /** Redirects followed at most, for links with FOLLOW_REDIRECTS=true. Default 5. */
    maxRedirects: z.number().int().min(0).max(20).default(5),
  })
  .strict();

export type HttpClientProviderOptions = z.output<typeof optionsSchema>;
export type HttpClientProviderOptionsInput = z.input<typeof optionsSchema>;

export function parseHttpClientProviderOptions(input: unknown = {}): HttpClientProviderOptions {
  const r = optionsSchema.safeParse(input ?? {});
  if (!r.success) throw new OptionsError(`invalid HTTP client provider options: ${z.prettifyError(r.error)}`, { cause: r.error });
  return r.data;
}

interface ClientLink {
  allowed: HostPattern[];
  followRedirects: boolean;
  timeoutMs: number;
  maxResponseBytes: number;
}

/** Request headers the client sets itself (hop-by-hop, framing, host): an actor's are dropped. */
const DROPPED_HEADERS = new Set(['host', 'connection', 'keep-alive', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'content-length', 'proxy-authorization', 'proxy-connection', 'expect']);
const METHOD = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const REFUSED_METHODS = new Set(['CONNECT', 'TRACE', 'TRACK']);

function positiveValue(values: Record<string, string>, key: string, max: number): number | undefined {
  const v = values[key];
  if (v === undefined || v === '') return undefined;
  const n = /^\d+$/.test(v.trim()) ? Number(v.trim()) : NaN;
  if (!(n >= 1)) throw new LinkError(`${key} must be a positive integer, got ${JSON.stringify(v)}`);
  return Math.min(n, max);
}

function flag(values: Record<string, string>, key: string): boolean {
  const v = (values[key] ?? '').trim().toLowerCase();
  if (v === '' || v === 'false' || v === '0' || v === 'no') return false;
  if (v === 'true' || v === '1' || v === 'yes') return true;
  throw new LinkError(`${key} must be true or false, got ${JSON.stringify(values[key])}`);
}

interface OutgoingRequest {
  method: string;
  url: URL;
  headers: Array<[string, string]>;
  body: Uint8Array;
}

function parsePerformRequest(msg: Uint8Array): OutgoingRequest {
  const op = OP_PERFORM_REQUEST;
  const req = decodeRequest(op, msg, ['method', 'path', 'queryString', 'header', 'body']);
  const method = stringField(op, req, 'method', 'GET').toUpperCase() || 'GET';
  if (!METHOD.test(method) || REFUSED_METHODS.has(method)) throw new OperationError('BAD_REQUEST', `${op}: method ${JSON.stringify(method)} is not allowed`);
  const path = stringField(op, req, 'path');
  let url: URL;
  try {
    url = new URL(path);
  } catch {
    throw new OperationError('BAD_REQUEST', `${op}: path must be an absolute http:// or https:// URL, got ${JSON.stringify(path.slice(0, 200))}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new OperationError('BAD_REQUEST', `${op}: only http:// and https:// URLs can be requested, not ${url.protocol}`);
  if (url.username || url.password) throw new OperationError('BAD_REQUEST', `${op}: credentials in the URL are not accepted; send an authorization header`);
  const query = stringField(op, req, 'queryString', '');
  if (query) url.search = url.search ? `${url.search.slice(1)}&${query}` : query;
  const body = bytesField(op, req, 'body');
  if ((method === 'GET' || method === 'HEAD') && body.byteLength > 0) throw new OperationError('BAD_REQUEST', `${op}: a ${method} request cannot have a body`);
  const headers = stringMapField(op, req, 'header').filter(([k]) => !DROPPED_HEADERS.has(k.toLowerCase()));
  return { method, url, headers, body };
}

function describeFailure(err: unknown): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string; errors?: Array<{ code?: string; message?: string }> } };
  if (e?.name === 'TimeoutError') return 'timed out';
  const cause = e?.cause?.code || !e?.cause?.errors?.length ? e?.cause : e.cause.errors[0];
  if (cause?.code) return `${cause.code}${cause.message ? ` (${cause.message})` : ''}`;
  return cause?.message ?? e?.message ?? String(err);
}

export class HttpClientProvider implements CapabilityProvider {
  readonly contract = HTTP_CLIENT;
  readonly name = 'httpclient';
  readonly options: HttpClientProviderOptions;
  readonly #links = new Map<string, ClientLink>();
  #logger: Logger = pino({ level: 'silent' });
  #stopped = false;

  constructor(options: HttpClientProviderOptionsInput = {}) {
    this.options = parseHttpClientProviderOptions(options);
  }

  async start(ctx: ProviderContext): Promise<void> {
    this.#logger = ctx.logger.child({ provider: this.name });
    this.#stopped = false;
  }

  async putLink(link: LinkDefinition): Promise<void> {
    const values = link.values ?? {};
    const allowed = parseAllowedHosts(values.ALLOWED_HOSTS);
    const client: ClientLink = {
      allowed,
      followRedirects: flag(values, 'FOLLOW_REDIRECTS'),
      timeoutMs: positiveValue(values, 'TIMEOUT_MS', this.options.timeoutMs) ?? this.options.timeoutMs,
      maxResponseBytes: positiveValue(values, 'MAX_RESPONSE_BYTES', this.options.maxResponseBytes) ?? this.options.maxResponseBytes,
    };
    const linkName = normalizeLinkName(link.linkName);
    if (isOpen(allowed)) this.#logger.warn({ actor: link.actor, linkName }, 'HTTP client link with ALLOWED_HOSTS=*: this actor may reach any host the provider can reach');
    if (allowed.length === 0) this.#logger.info({ actor: link.actor, linkName }, 'HTTP client link without ALLOWED_HOSTS: every request will be refused until it names hosts');
    this.#links.set(`${link.actor}\n${linkName}`, client);
  }

  async deleteLink(link: LinkDefinition): Promise<void> {
    this.#links.delete(`${link.actor}\n${normalizeLinkName(link.linkName)}`);
  }

  async handle(call: ProviderCall): Promise<Uint8Array> {
    if (call.operation !== OP_PERFORM_REQUEST) unknownOperation('the HTTP client', call.operation, [OP_PERFORM_REQUEST]);
    const linkName = normalizeLinkName(call.linkName);
    const link = this.#links.get(`${call.actor}\n${linkName}`);
    if (!link) throw new OperationError('NOT_LINKED', this.#stopped ? 'the HTTP client provider is stopped' : `actor ${call.actor} has no HTTP client link named "${linkName}"`);
    const req = parsePerformRequest(call.msg);
    return encode(await this.#perform(req, link));
  }

  #check(link: ClientLink, url: URL): void {
    if (link.allowed.length === 0) throw new OperationError('BAD_REQUEST', `${OP_PERFORM_REQUEST}: no host is allowed for this link: set ALLOWED_HOSTS on it (refused ${url.host})`);
    if (!hostAllowed(link.allowed, url)) throw new OperationError('BAD_REQUEST', `${OP_PERFORM_REQUEST}: host ${url.host} is not in this link's ALLOWED_HOSTS`);
  }

  async #perform(first: OutgoingRequest, link: ClientLink): Promise<{ statusCode: number; status: string; header: Record<string, string>; body: Uint8Array }> {
    const signal = AbortSignal.timeout(link.timeoutMs);
    let req = first;
    for (let hop = 0; ; hop++) {
      this.#check(link, req.url);
      let res: Response;
      try {
        res = await fetch(req.url, {
          method: req.method,
          headers: req.headers,
          ...(req.body.byteLength ? { body: req.body as Uint8Array<ArrayBuffer> } : {}),
          redirect: 'manual',
          signal,
        });
      } catch (err) {
        throw new OperationError('BACKEND_ERROR', `${OP_PERFORM_REQUEST} ${req.method} ${req.url.origin}: ${describeFailure(err)}${signal.aborted ? ` after ${link.timeoutMs} ms` : ''}`, { cause: err });
      }
      const location = res.headers.get('location');
      if (link.followRedirects && res.status >= 300 && res.status < 400 && location !== null && res.status !== 304) {
        await res.body?.cancel().catch(() => {});
        if (hop >= this.options.maxRedirects) throw new OperationError('BACKEND_ERROR', `${OP_PERFORM_REQUEST}: more than ${this.options.maxRedirects} redirects`);
        let next: URL;
        try {
          next = new URL(location, req.url);
        } catch {
          throw new OperationError('BACKEND_ERROR', `${OP_PERFORM_REQUEST}: redirect to an invalid location ${JSON.stringify(location.slice(0, 200))}`);
        }
        if (next.protocol !== 'http:' && next.protocol !== 'https:') throw new OperationError('BACKEND_ERROR', `${OP_PERFORM_REQUEST}: redirect to ${next.protocol} refused`);
        // 303 (and 301/302 after a POST, as browsers do) turn into a GET without a body.
        const toGet = res.status === 303 || ((res.status === 301 || res.status === 302) && req.method === 'POST');
        const sameOrigin = next.origin === req.url.origin;
        req = {
          method: toGet ? (req.method === 'HEAD' ? 'HEAD' : 'GET') : req.method,
          url: next,
          // Credentials never follow a redirect to another origin.
          headers: req.headers.filter(([k]) => sameOrigin || !/^(authorization|cookie)$/i.test(k)).filter(([k]) => !toGet || !/^content-/i.test(k)),
          body: toGet ? new Uint8Array(0) : req.body,
        };
        continue;
      }
      const body = await readCapped(res, link.maxResponseBytes, signal, req);
      const header: Record<string, string> = {};
      res.headers.forEach((value, name) => {
        header[name] = header[name] === undefined ? value : `${header[name]}, ${value}`;
      });
      return { statusCode: res.status, status: res.statusText || STATUS_CODES[res.status] || '', header, body };
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#links.clear();
  }
}

/** The body, read as a stream and cut off past `max` bytes (the connection is dropped). */
async function readCapped(res: Response, max: number, signal: AbortSignal, req: OutgoingRequest): Promise<Uint8Array> {
  const tooLarge = () => new OperationError('BACKEND_ERROR', `${OP_PERFORM_REQUEST} ${req.method} ${req.url.origin}: the response body is larger than ${max} bytes`);
  const declared = Number(res.headers.get('content-length') ?? NaN);
  if (declared > max) {
    await res.body?.cancel().catch(() => {});
    throw tooLarge();
  }
  if (!res.body) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = res.body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > max) {
        await reader.cancel().catch(() => {});
        throw tooLarge();
      }
      chunks.push(value);
    }
  } catch (err) {
    if (err instanceof OperationError) throw err;
    throw new OperationError('BACKEND_ERROR', `${OP_PERFORM_REQUEST} ${req.method} ${req.url.origin}: reading the response failed: ${describeFailure(err)}${signal.aborted ? ' (the deadline passed)' : ''}`, { cause: err });
  }
  return Buffer.concat(chunks, total);
}
