/**
 * The Kubernetes API test server: HTTP and HTTPS listeners on 127.0.0.1, bearer token
 * authentication, discovery and OpenAPI, the resource endpoints, a kubeconfig file, and fault
 * hooks for tests (stop/restart keeping the data, history compaction, injected errors, cut
 * watches).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino, { type Logger } from 'pino';
import { ApiError, badRequest, failureStatus, type StatusReason } from './api-error.ts';
import { apiGroup, apiGroupList, apiResourceList, apiVersions, versionInfo } from './discovery.ts';
import { handleResource, type HandlerContext } from './handlers.ts';
import { sendError, sendJson } from './http-util.ts';
import { startControllers, type Controllers } from './controllers/index.ts';
import { KubeStore } from './kube-store.ts';
import { writeKubeconfig } from './kubeconfig.ts';
import { openApiDocument, openApiRoot } from './openapi.ts';
import { parseKubeApiServerOptions, type KubeApiServerOptions, type KubeApiServerOptionsInput } from './options.ts';
import { Registry } from './registry.ts';
import { resourceByPlural } from './resources.ts';
import { pathNotFound, route } from './router.ts';
import { Store } from './store.ts';
import { kubeletStreamPath, proxyUpgrade, refuseUpgrade, STREAM_SUBRESOURCES, tunnelPortForward, wantsSpdyTunnel } from './stream-proxy.ts';
import { generateTestCertificate, type TlsMaterial } from './tls.ts';
import type { ActiveWatch } from './watch.ts';

/** An error the server answers matching requests with, instead of serving them. */
export interface FaultSpec {
  /** HTTP method to match (any when unset). */
  method?: string;
  /** Matches the URL path: a substring, or a RegExp. Any when unset. */
  path?: string | RegExp;
  status: number;
  reason?: StatusReason;
  message?: string;
  /** How many requests to fail. Default 1; Infinity for all until clearFaults(). */
  times?: number;
}

export interface RequestRecord {
  method: string;
  path: string;
  query: string;
  contentType?: string;
  status: number;
}

export interface KubeApiServer {
  /** `http://127.0.0.1:PORT` */
  readonly url: string;
  /** `https://127.0.0.1:PORT`, when HTTPS is on. */
  readonly httpsUrl: string | undefined;
  /** The URL the kubeconfig points at: `httpsUrl` when HTTPS is on, else `url`. */
  readonly server: string;
  /** The bearer token requests need, or undefined when authentication is off. */
  readonly token: string | undefined;
  /** A kubeconfig for this server (cluster, user with the token, context with namespace `default`). */
  readonly kubeconfigPath: string;
  /** The server certificate (also the CA to trust) and the client certificate it uses towards kubelets. */
  readonly tls: TlsMaterial;
  /** Direct access to the objects, for assertions and for playing other cluster components. */
  readonly store: KubeStore;
  /** The last requests served (up to 2000), oldest first. */
  readonly requests: readonly RequestRecord[];
  readonly running: boolean;
  /** Forgets the change history: resuming a watch (or a paged list) from any earlier resource version gets 410 Gone. */
  compactHistory(): void;
  /** Ends every open watch (clients see the stream close and resume). */
  closeWatches(): void;
  injectFault(fault: FaultSpec): void;
  clearFaults(): void;
  /** Stops listening and drops every connection; the data stays. */
  stop(): Promise<void>;
  /** Listens again on the same ports with the same data (stopping first if running). */
  restart(): Promise<void>;
  /** Stops for good and removes the temporary kubeconfig. */
  close(): Promise<void>;
}

const MAX_RECORDS = 2000;

class KubeApiServerImpl implements KubeApiServer {
  readonly store: KubeStore;
  readonly requests: RequestRecord[] = [];
  readonly token: string | undefined;
  kubeconfigPath = '';
  running = false;
  private readonly logger: Logger;
  private readonly registry: Registry;
  private readonly backing: Store;
  private readonly ctx: HandlerContext;
  private readonly watches = new Set<ActiveWatch>();
  private readonly sockets = new Set<Socket>();
  private readonly faults: Array<FaultSpec & { left: number }> = [];
  private httpServer: Server | undefined;
  private httpsServer: Server | undefined;
  private httpPort: number;
  private httpsPort: number;
  private ownKubeconfigDir: string | undefined;
  private controllers: Controllers | undefined;
  private closed = false;

  constructor(
    private readonly options: KubeApiServerOptions,
    readonly tls: TlsMaterial,
  ) {
    this.logger = options.logger ?? pino({ level: 'silent' });
    this.token = options.token === null ? undefined : (options.token ?? randomBytes(24).toString('hex'));
    this.backing = new Store({ historySize: options.historySize, onListenerError: (err) => this.logger.error({ err }, 'store listener failed') });
    this.registry = new Registry(this.backing, this.logger);
    this.store = new KubeStore(this.registry);
    this.httpPort = options.port;
    this.httpsPort = options.httpsPort;
    const kc = options.kubeletClient;
    this.ctx = {
      registry: this.registry,
      logger: this.logger,
      watchSettings: { bookmarkIntervalMs: options.bookmarkIntervalMs, maxBufferedBytes: options.maxWatchBufferBytes },
      kubeletClient: { bearerToken: kc.bearerToken, ca: kc.ca, cert: kc.cert ?? tls.clientCert, key: kc.key ?? tls.clientKey },
      trackWatch: (w) => {
        this.watches.add(w);
        return () => this.watches.delete(w);
      },
    };
    const nsDef = resourceByPlural('namespaces')!;
    for (const name of options.namespaces) this.registry.create(nsDef, undefined, { metadata: { name } });
  }

  get url(): string {
    return `http://127.0.0.1:${this.httpPort}`;
  }

  get httpsUrl(): string | undefined {
    return this.options.https ? `https://127.0.0.1:${this.httpsPort}` : undefined;
  }

  get server(): string {
    return this.httpsUrl ?? this.url;
  }

  async start(): Promise<void> {
    await this.listen();
    const dir = this.options.kubeconfigDir ?? (this.ownKubeconfigDir = await mkdtemp(join(tmpdir(), 'kube-api-server-')));
    this.kubeconfigPath = join(dir, 'kubeconfig.yaml');
    await writeKubeconfig(this.kubeconfigPath, { server: this.server, ca: this.options.https ? this.tls.cert : undefined, token: this.token });
    if (this.options.controllers) this.controllers = startControllers(this.store, this.logger);
  }

  compactHistory(): void {
    this.backing.compact();
  }

  closeWatches(): void {
    for (const w of [...this.watches]) w.close();
  }

  injectFault(fault: FaultSpec): void {
    if (!Number.isInteger(fault.status) || fault.status < 400 || fault.status > 599) throw new TypeError('fault status must be an HTTP error status (400-599)');
    this.faults.push({ ...fault, left: fault.times ?? 1 });
  }

  clearFaults(): void {
    this.faults.length = 0;
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.closeWatches();
    const servers = [this.httpServer, this.httpsServer].filter((s): s is Server => s !== undefined);
    this.httpServer = undefined;
    this.httpsServer = undefined;
    const closing = servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve())));
    for (const s of servers) s.closeAllConnections();
    for (const sock of this.sockets) sock.destroy();
    this.sockets.clear();
    await Promise.all(closing);
    this.logger.info('kube API server stopped');
  }

  async restart(): Promise<void> {
    if (this.closed) throw new Error('kube API server is closed');
    await this.stop();
    await this.listen();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.controllers?.stop();
    await this.stop();
    if (this.ownKubeconfigDir) await rm(this.ownKubeconfigDir, { recursive: true, force: true });
  }

  private async listen(): Promise<void> {
    const handler = (req: IncomingMessage, res: ServerResponse) => {
      this.handle(req, res).catch((err: unknown) => {
        this.logger.error({ err }, 'request failed');
        if (!res.headersSent) sendError(res, err);
        else res.destroy();
      });
    };
    const track = (s: Server) => {
      s.on('connection', (sock: Socket) => {
        this.sockets.add(sock);
        sock.on('close', () => this.sockets.delete(sock));
      });
      s.on('upgrade', (req: IncomingMessage, sock: Socket, head: Buffer) => this.upgrade(req, sock, head));
      s.on('clientError', (err, sock: Socket) => {
        this.logger.debug({ err }, 'malformed HTTP request');
        sock.destroy();
      });
      return s;
    };
    const http = track(createHttpServer(handler));
    this.httpPort = await listenOn(http, this.httpPort);
    this.httpServer = http;
    if (this.options.https) {
      const https = track(createHttpsServer({ cert: this.tls.cert, key: this.tls.key }, handler));
      https.on('tlsClientError', (_err, sock) => sock.destroy());
      this.httpsPort = await listenOn(https, this.httpsPort);
      this.httpsServer = https;
    }
    this.running = true;
    this.logger.info({ url: this.url, httpsUrl: this.httpsUrl }, 'kube API server listening');
  }

  private record(req: IncomingMessage, res: ServerResponse, url: URL): void {
    res.on('finish', () => {
      this.requests.push({ method: req.method ?? '', path: url.pathname, query: url.search, contentType: req.headers['content-type'], status: res.statusCode });
      if (this.requests.length > MAX_RECORDS) this.requests.splice(0, this.requests.length - MAX_RECORDS);
    });
  }

  private matchFault(method: string, path: string): FaultSpec | undefined {
    const i = this.faults.findIndex(
      (f) => (!f.method || f.method.toUpperCase() === method) && (f.path === undefined || (typeof f.path === 'string' ? path.includes(f.path) : f.path.test(path))),
    );
    if (i === -1) return undefined;
    const f = this.faults[i]!;
    if (--f.left <= 0) this.faults.splice(i, 1);
    return f;
  }

  /** Upgrade requests: only pods' exec, attach and portforward, proxied to the pod's kubelet. */
  private upgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://localhost');
    this.requests.push({ method: req.method ?? '', path: url.pathname, query: url.search, status: 101 });
    try {
      if (this.token !== undefined && req.headers.authorization !== `Bearer ${this.token}`) throw new ApiError(401, 'Unauthorized', 'Unauthorized');
      const r = route(url.pathname);
      if (r.kind !== 'resource' || r.def.plural !== 'pods' || !r.subresource || !STREAM_SUBRESOURCES.includes(r.subresource)) throw badRequest(`${url.pathname} does not upgrade connections`);
      const target = kubeletStreamPath(this.registry, r.namespace!, r.name!, r.subresource, url);
      if (r.subresource === 'portforward' && wantsSpdyTunnel(req)) tunnelPortForward(req, socket, head, target, this.ctx.kubeletClient, this.logger);
      else proxyUpgrade(req, socket, head, target, this.ctx.kubeletClient, this.logger);
    } catch (err) {
      refuseUpgrade(socket, err);
    }
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const method = (req.method ?? 'GET').toUpperCase();
    this.record(req, res, url);
    this.logger.debug({ method, url: req.url }, 'request');
    try {
      // As upstream, only the version and health endpoints are public.
      const isPublic = ['/version', '/healthz', '/livez', '/readyz'].includes(url.pathname.replace(/\/+$/, ''));
      if (!isPublic && this.token !== undefined && req.headers.authorization !== `Bearer ${this.token}`) {
        sendJson(res, 401, failureStatus(401, 'Unauthorized', 'Unauthorized'));
        return;
      }
      const r = route(url.pathname);
      if (r.kind === 'health') {
        res.writeHead(200, { 'Content-Type': 'text/plain' });
        res.end('ok');
        return;
      }
      if (r.kind === 'version') return sendJson(res, 200, versionInfo());
      const fault = this.matchFault(method, url.pathname);
      if (fault) {
        throw new ApiError(fault.status, fault.reason ?? (fault.status >= 500 ? 'InternalError' : 'BadRequest'), fault.message ?? `injected fault (${fault.status})`);
      }
      if (r.kind !== 'resource' && method !== 'GET') throw new ApiError(405, 'MethodNotAllowed', `${method} is not supported on ${url.pathname}`);
      switch (r.kind) {
        case 'apiVersions':
          return sendJson(res, 200, apiVersions(`127.0.0.1:${req.socket.localPort ?? 0}`));
        case 'groupList':
          return sendJson(res, 200, apiGroupList());
        case 'group': {
          const g = apiGroup(r.group);
          if (!g) throw pathNotFound();
          return sendJson(res, 200, g);
        }
        case 'resourceList': {
          const list = apiResourceList(r.group, r.version);
          if (!list) throw pathNotFound();
          return sendJson(res, 200, list);
        }
        case 'openapiRoot':
          return sendJson(res, 200, openApiRoot());
        case 'openapi': {
          const doc = openApiDocument(r.gv);
          if (!doc) throw pathNotFound();
          return sendJson(res, 200, doc);
        }
        case 'resource':
          await handleResource(this.ctx, r, req, res, url);
          return;
      }
    } catch (err) {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const apiErr = sendError(res, err);
      if (apiErr.code >= 500) this.logger.warn({ err, method, url: req.url }, 'request failed');
    }
  }
}

function listenOn(server: Server, port: number): Promise<number> {
  const attempt = () =>
    new Promise<number>((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      server.once('error', onError);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', onError);
        resolve((server.address() as AddressInfo).port);
      });
    });
  return (async () => {
    // Restarting on the same port can race the old socket's release; retry briefly.
    for (let i = 0; ; i++) {
      try {
        return await attempt();
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || port === 0 || i >= 20) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  })();
}

/** Starts a Kubernetes API test server on free loopback ports. */
export async function startKubeApiServer(input: KubeApiServerOptionsInput = {}): Promise<KubeApiServer> {
  const options = parseKubeApiServerOptions(input);
  const tls = await generateTestCertificate('kube-api-server');
  const server = new KubeApiServerImpl(options, tls);
  await server.start();
  return server;
}
