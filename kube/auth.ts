/**
 * Who may call the kubelet API: a client certificate signed by the configured client CA (the API
 * server's kubelet client certificate), a bearer token from the configured list, or a bearer
 * token the API server vouches for through a TokenReview (answers cached for a while).
 * Anonymous callers get nothing.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { apiErrorText, type KubeClients } from './kube-client.ts';

export interface Caller {
  user: string;
  via: 'client-certificate' | 'token' | 'token-review';
}

export interface AuthenticatorOptions {
  tokens: string[];
  tokenReview: boolean;
  cacheMs: number;
  logger: Logger;
}

const digest = (s: string) => createHash('sha256').update(s).digest();

export class KubeletAuthenticator {
  readonly #tokens: Buffer[];
  readonly #reviews = new Map<string, { caller: Caller | undefined; until: number }>();

  constructor(
    private readonly clients: KubeClients | undefined,
    private readonly options: AuthenticatorOptions,
  ) {
    this.#tokens = options.tokens.map(digest);
  }

  async authenticate(req: IncomingMessage): Promise<Caller | undefined> {
    const socket = req.socket as TLSSocket;
    if (socket.authorized) {
      const cn = socket.getPeerCertificate()?.subject?.CN;
      return { user: (Array.isArray(cn) ? cn[0] : cn) ?? 'client-certificate', via: 'client-certificate' };
    }
    const header = req.headers.authorization ?? '';
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!m) return undefined;
    const token = m[1]!;
    // Compare digests, so neither the length nor the content of a token leaks through timing.
    const d = digest(token);
    if (this.#tokens.some((t) => timingSafeEqual(t, d))) return { user: 'static-token', via: 'token' };
    if (!this.options.tokenReview || !this.clients) return undefined;
    return this.#review(token);
  }

  async #review(token: string): Promise<Caller | undefined> {
    const key = digest(token).toString('hex');
    const now = Date.now();
    const cached = this.#reviews.get(key);
    if (cached && cached.until > now) return cached.caller;
    let caller: Caller | undefined;
    try {
      const r = await this.clients!.authentication.createTokenReview({ body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token } } });
      if (r.status?.authenticated) caller = { user: r.status.user?.username ?? 'unknown', via: 'token-review' };
    } catch (err) {
      // The API server cannot review tokens (or is down): the token is not accepted, and not cached.
      this.options.logger.debug({ err: apiErrorText(err) }, 'token review failed');
      return undefined;
    }
    if (this.#reviews.size > 1024) this.#reviews.clear();
    this.#reviews.set(key, { caller, until: now + this.options.cacheMs });
    return caller;
  }
}
