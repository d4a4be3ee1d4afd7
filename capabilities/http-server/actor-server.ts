/**
 * One `node:http` server serving one actor link: turns each request into a `HandleRequest`
 * invocation and the actor's answer into the response.
 *
 * This is the hot path of every HTTP benchmark, so it avoids work per request: no body listeners
 * when the request has no body, no copy of a single-chunk body, one shared invocation-options
 * object, state kept on a subclass of IncomingMessage instead of in closures.
 */
import { IncomingMessage, STATUS_CODES, createServer } from 'node:http';
import type { Server, ServerResponse } from 'node:http';
import { decode, isInvocationError } from '../../host/index.ts';
import type { Logger, ProviderContext } from '../../host/index.ts';
import { BadActorResponse, EMPTY, encodeHttpRequest, headerValue, OP_HANDLE_REQUEST, requestHeaders, toHttpResponse, type HeaderList } from './http-codec.ts';
import type { ListenTarget, ResolvedHttpServerOptions } from './options.ts';

/** A request with the state its body listeners need (module-level listeners read it from `this`). */
class ActorRequest extends IncomingMessage {
  owner: ActorServer | undefined = undefined;
  outgoing: ServerResponse | undefined = undefined;
  header: HeaderList | undefined = undefined;
  chunks: Buffer[] | undefined = undefined;
  received = 0;
}

function onBodyData(this: ActorRequest, chunk: Buffer): void {
  const owner = this.owner!;
  this.received += chunk.byteLength;
  if (this.received > owner.maxBodyBytes) {
    // Stop reading now; the 413 closes the connection, so the rest is never read.
    this.removeListener('data', onBodyData);
    this.removeListener('end', onBodyEnd);
    this.pause();
    owner.tooLarge(this.outgoing!);
    return;
  }
  if (this.chunks === undefined) this.chunks = [chunk];
  else this.chunks.push(chunk);
}

function onBodyEnd(this: ActorRequest): void {
  const chunks = this.chunks;
  const body = chunks === undefined ? EMPTY : chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, this.received);
  this.chunks = undefined;
  this.owner!.invoke(this, this.outgoing!, this.header!, body);
}

const TEXT_PLAIN = 'text/plain; charset=utf-8';

/** The reasons sent as 5xx/4xx bodies: short, fixed, never a stack or an actor's message. */
const REASONS = {
  tooLarge: 'request body too large\n',
  badResponse: 'bad gateway: the actor returned an invalid response\n',
  responseTooLarge: 'bad gateway: the actor\'s response is too large\n',
  timeout: 'gateway timeout: the actor did not answer in time\n',
  failed: 'internal server error: the actor failed\n',
  unavailable: 'service unavailable: the actor is not available\n',
  internal: 'internal server error\n',
} as const;

export class ActorServer {
  readonly server: Server<typeof ActorRequest>;
  readonly maxBodyBytes: number;
  private readonly invokeOptions: { linkName: string; deadlineMs?: number };
  private readonly log: Logger;
  /** Set by `close()`: responses then ask the client to close the connection. */
  private draining = false;

  constructor(
    readonly actor: string,
    readonly linkName: string,
    readonly target: ListenTarget,
    private readonly ctx: ProviderContext,
    private readonly options: ResolvedHttpServerOptions,
  ) {
    this.maxBodyBytes = options.maxBodyBytes;
    this.invokeOptions = options.invocationDeadlineMs === undefined ? { linkName } : { linkName, deadlineMs: options.invocationDeadlineMs };
    this.log = ctx.logger.child({ actor, linkName, port: target.port });
    this.server = createServer<typeof ActorRequest>({
      IncomingMessage: ActorRequest,
      headersTimeout: options.headersTimeoutMs,
      requestTimeout: options.requestTimeoutMs,
      keepAliveTimeout: options.keepAliveTimeoutMs,
      maxHeaderSize: options.maxHeaderBytes,
      // Node enforces the two timeouts above only when this timer fires (default every 30 s).
      connectionsCheckingInterval: Math.max(10, Math.min(1000, Math.floor(options.headersTimeoutMs / 4))),
      noDelay: true,
    });
    this.server.on('request', this.onRequest);
    // Expect: 100-continue: refuse an oversized body before the client sends it.
    this.server.on('checkContinue', this.onCheckContinue);
    this.server.on('error', (err) => this.log.error({ err }, 'HTTP server error'));
    // Malformed requests and header timeouts are left to Node's default `clientError` handling
    // (400 / 408 / 431, then close): they never become a request, so they never reach the actor.
  }

  /** Listen; rejects with the system error (EADDRINUSE, EACCES…) and leaves nothing open. */
  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => {
        this.server.removeListener('listening', onListening);
        reject(err);
      };
      const onListening = () => {
        this.server.removeListener('error', onError);
        resolve();
      };
      this.server.once('error', onError);
      this.server.once('listening', onListening);
      this.server.listen({ port: this.target.port, host: this.target.address, exclusive: true });
    });
  }

  /** The address actually bound. */
  boundAddress(): ListenTarget | undefined {
    const a = this.server.address();
    return a && typeof a === 'object' ? { address: a.address, port: a.port } : undefined;
  }

  /**
   * Stop accepting, let in-flight requests finish (their responses close their connections),
   * and after `drainTimeoutMs` destroy whatever is still open.
   */
  close(): Promise<void> {
    this.draining = true;
    return new Promise((resolve) => {
      if (!this.server.listening) {
        this.server.closeAllConnections();
        resolve();
        return;
      }
      const timer = setTimeout(() => {
        this.log.warn({ drainTimeoutMs: this.options.drainTimeoutMs }, 'HTTP server drain timed out; closing connections');
        this.server.closeAllConnections();
      }, this.options.drainTimeoutMs);
      timer.unref();
      this.server.close(() => {
        clearTimeout(timer);
        resolve();
      });
      this.server.closeIdleConnections();
    });
  }

  private readonly onCheckContinue = (req: ActorRequest, res: ServerResponse): void => {
    const length = req.headers['content-length'];
    if (length === undefined || Number(length) <= this.maxBodyBytes) res.writeContinue();
    this.onRequest(req, res);
  };

  private readonly onRequest = (req: ActorRequest, res: ServerResponse): void => {
    // Built once from rawHeaders and used for the checks too, so Node never builds `req.headers`.
    const header = requestHeaders(req.rawHeaders);
    const length = headerValue(header, 'content-length');
    if (length !== undefined) {
      const n = Number(length);
      if (n > this.maxBodyBytes) {
        this.tooLarge(res);
        return;
      }
      if (n === 0) {
        this.invoke(req, res, header, EMPTY);
        return;
      }
    } else if (headerValue(header, 'transfer-encoding') === undefined) {
      // HTTP/1.1: no Content-Length and no Transfer-Encoding means no body; don't wait for 'end'.
      this.invoke(req, res, header, EMPTY);
      return;
    }
    req.owner = this;
    req.outgoing = res;
    req.header = header;
    req.on('data', onBodyData);
    req.on('end', onBodyEnd);
  };

  invoke(req: IncomingMessage, res: ServerResponse, header: HeaderList, body: Uint8Array): void {
    const bytes = encodeHttpRequest(req.method!, req.url!, header, body);
    let pending: Promise<Uint8Array>;
    try {
      pending = this.ctx.invokeActor(this.actor, OP_HANDLE_REQUEST, bytes, this.invokeOptions);
    } catch (err) {
      this.failed(res, err);
      return;
    }
    pending.then(
      (out) => this.respond(res, out),
      (err: unknown) => this.failed(res, err),
    );
  }

  private respond(res: ServerResponse, out: Uint8Array): void {
    if (out.byteLength > this.options.maxResponseBytes) {
      this.sendError(res, 502, REASONS.responseTooLarge, `actor response of ${out.byteLength} bytes is over maxResponseBytes (${this.options.maxResponseBytes})`, undefined);
      return;
    }
    let r: ReturnType<typeof toHttpResponse>;
    try {
      r = toHttpResponse(decode(out));
    } catch (err) {
      this.sendError(res, 502, REASONS.badResponse, err instanceof BadActorResponse ? err.message : 'actor response is not valid msgpack', err);
      return;
    }
    if (res.destroyed) return; // the client went away while the actor worked
    if (this.draining) res.shouldKeepAlive = false;
    try {
      res.writeHead(r.statusCode, r.status, r.headers);
    } catch (err) {
      // Not expected after validation; never let it escape into the server.
      this.sendError(res, 502, REASONS.badResponse, 'actor response could not be written', err);
      return;
    }
    res.end(r.body);
    if (r.statusCode >= 500) this.log.warn({ statusCode: r.statusCode }, 'actor answered with a server error');
  }

  private failed(res: ServerResponse, err: unknown): void {
    let status = 500;
    let reason: string = REASONS.internal;
    if (isInvocationError(err)) {
      switch (err.code) {
        case 'DEADLINE_EXCEEDED':
          status = 504;
          reason = REASONS.timeout;
          break;
        case 'TRAP':
        case 'GUEST_ERROR':
          reason = REASONS.failed;
          break;
        case 'PAYLOAD_TOO_LARGE':
          status = 502;
          reason = REASONS.responseTooLarge;
          break;
        case 'UNAVAILABLE':
        case 'STOPPING':
        case 'ACTOR_NOT_FOUND':
          status = 503;
          reason = REASONS.unavailable;
          break;
      }
    }
    this.sendError(res, status, reason, 'actor invocation failed', err);
  }

  /** Answer 413 and close the connection, so an unread body is never read. */
  tooLarge(res: ServerResponse): void {
    res.shouldKeepAlive = false;
    this.sendText(res, 413, REASONS.tooLarge);
  }

  private sendError(res: ServerResponse, status: number, reason: string, logMsg: string, err: unknown): void {
    const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
    this.log.warn({ statusCode: status, code, err }, logMsg);
    this.sendText(res, status, reason);
  }

  private sendText(res: ServerResponse, status: number, text: string): void {
    if (res.destroyed) return;
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (this.draining) res.shouldKeepAlive = false;
    res.writeHead(status, STATUS_CODES[status]!, { 'content-type': TEXT_PLAIN, 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }
}
