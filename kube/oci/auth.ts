/**
 * Registry authentication, as the distribution spec and Docker do it: a request without
 * credentials gets `401` with `WWW-Authenticate`; for `Basic` we answer with the user and password,
 * for `Bearer realm=…,service=…,scope=…` we fetch a token from the realm (with basic credentials,
 * an identity token, or anonymously) and retry with it. Tokens are kept per scope until they expire.
 */
import type { Logger } from 'pino';
import type { ResolvedCredentials } from './credentials.ts';
import { RegistryError } from '../errors.ts';

export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** Parses `Bearer realm="…",service="…"` (first challenge only; quoted strings may hold commas). */
export function parseChallenge(header: string): Challenge | undefined {
  const m = /^\s*([A-Za-z][A-Za-z0-9_-]*)\s*(.*)$/s.exec(header);
  if (!m) return undefined;
  const params: Record<string, string> = {};
  const re = /\s*([A-Za-z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*(?:,|$)/gy;
  let rest: RegExpExecArray | null;
  while ((rest = re.exec(m[2]!)) !== null) {
    params[rest[1]!.toLowerCase()] = rest[2] !== undefined ? rest[2].replace(/\\(.)/g, '$1') : rest[3]!;
    if (re.lastIndex >= m[2]!.length) break;
  }
  return { scheme: m[1]!.toLowerCase(), params };
}

export interface TokenFetchInit {
  method: 'GET' | 'POST';
  headers: Record<string, string>;
  body?: string;
}

/** Does the HTTP for a token request (the client supplies timeouts, TLS rules, error mapping). */
export type TokenFetcher = (url: URL, init: TokenFetchInit) => Promise<{ status: number; json: () => Promise<unknown> }>;

interface CachedToken {
  token: string;
  expiresAt: number;
}

function basic(creds: ResolvedCredentials): string {
  return `Basic ${Buffer.from(`${creds.username}:${creds.password}`, 'utf8').toString('base64')}`;
}

export class Authenticator {
  readonly #registry: string;
  readonly #creds: ResolvedCredentials | undefined;
  readonly #fetchToken: TokenFetcher;
  readonly #allowPlainRealm: (url: URL) => boolean;
  readonly #logger: Logger;
  /** Set once the registry asked for Basic: then every request carries it. */
  #basic = false;
  #bearer: Challenge | undefined;
  readonly #tokens = new Map<string, CachedToken>();

  constructor(options: {
    registry: string;
    credentials: ResolvedCredentials | undefined;
    fetchToken: TokenFetcher;
    /** May credentials go to this realm over plain HTTP (loopback / insecure registries)? */
    allowPlainRealm: (url: URL) => boolean;
    logger: Logger;
  }) {
    this.#registry = options.registry;
    this.#creds = options.credentials;
    this.#fetchToken = options.fetchToken;
    this.#allowPlainRealm = options.allowPlainRealm;
    this.#logger = options.logger;
  }

  get hasCredentials(): boolean {
    return this.#creds !== undefined;
  }

  /** The Authorization header for a request needing `scope`, when we already know one. */
  header(scope: string): string | undefined {
    if (this.#basic && this.#creds?.username !== undefined) return basic(this.#creds);
    const cached = this.#tokens.get(scope);
    if (cached && cached.expiresAt > Date.now()) return `Bearer ${cached.token}`;
    return undefined;
  }

  /**
   * Handles a 401. Returns the header to retry with; throws UNAUTHORIZED when retrying cannot help.
   * `final` is true when the refused request already carried credentials obtained for it (so a
   * retry would be refused again); a refused header from the cache is renewed once instead.
   */
  async challenge(wwwAuthenticate: string | null, scope: string, final: boolean, signal: AbortSignal | undefined): Promise<string> {
    const challenge = wwwAuthenticate ? parseChallenge(wwwAuthenticate) : undefined;
    const who = this.#creds ? `the credentials for ${this.#registry} (user ${this.#creds.username ?? '(identity token)'})` : undefined;
    this.#tokens.delete(scope);
    if (final) {
      throw new RegistryError(
        'UNAUTHORIZED',
        who ? `${this.#registry} refused ${who} for ${scope}` : `${this.#registry} refused anonymous access to ${scope}: credentials are needed (for pods, an image pull secret)`,
        { status: 401 },
      );
    }
    if (challenge?.scheme === 'basic') {
      if (this.#creds?.username === undefined) {
        throw new RegistryError('UNAUTHORIZED', `${this.#registry} requires a user name and password (Basic auth) and none were given for it`, { status: 401 });
      }
      this.#basic = true;
      return basic(this.#creds);
    }
    if (challenge?.scheme === 'bearer') {
      this.#bearer = challenge;
      const token = await this.#token(challenge, scope, signal);
      return `Bearer ${token}`;
    }
    throw new RegistryError('UNAUTHORIZED', `${this.#registry} answered 401 with ${wwwAuthenticate ? `an unsupported challenge (${wwwAuthenticate})` : 'no WWW-Authenticate challenge'}`, { status: 401 });
  }

  /** Fetches a token for `scope` up front when the registry is known to use bearer tokens. */
  async prepare(scope: string, signal: AbortSignal | undefined): Promise<string | undefined> {
    const known = this.header(scope);
    if (known || !this.#bearer) return known;
    return `Bearer ${await this.#token(this.#bearer, scope, signal)}`;
  }

  async #token(challenge: Challenge, scope: string, signal: AbortSignal | undefined): Promise<string> {
    const realmText = challenge.params.realm;
    let realm: URL;
    try {
      realm = new URL(realmText ?? '');
    } catch (err) {
      throw new RegistryError('UNAUTHORIZED', `${this.#registry} asked for a bearer token but gave no valid realm (${realmText ?? 'none'})`, { cause: err, status: 401 });
    }
    if (realm.protocol !== 'https:' && realm.protocol !== 'http:') throw new RegistryError('UNAUTHORIZED', `token realm ${realm.href} is not http(s)`);
    if (realm.protocol === 'http:' && this.#creds && !this.#allowPlainRealm(realm)) {
      throw new RegistryError('UNAUTHORIZED', `refusing to send credentials to the token realm ${realm.origin} over plain HTTP (list it in insecureRegistries to allow it)`);
    }
    const service = challenge.params.service;
    const scopes = [scope];
    if (challenge.params.scope && challenge.params.scope !== scope) scopes.push(challenge.params.scope);
    const headers: Record<string, string> = { accept: 'application/json' };
    let init: TokenFetchInit;
    if (this.#creds?.identityToken !== undefined) {
      // OAuth2 refresh-token grant, as `docker login` identity tokens are used.
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: this.#creds.identityToken, client_id: 'wasmlet' });
      if (service) form.set('service', service);
      form.set('scope', scopes.join(' '));
      headers['content-type'] = 'application/x-www-form-urlencoded';
      init = { method: 'POST', headers, body: form.toString() };
    } else {
      if (service) realm.searchParams.set('service', service);
      for (const s of scopes) realm.searchParams.append('scope', s);
      if (this.#creds?.username !== undefined) headers.authorization = basic(this.#creds);
      init = { method: 'GET', headers };
    }
    signal?.throwIfAborted();
    const res = await this.#fetchToken(realm, init);
    if (res.status === 401 || res.status === 403) {
      throw new RegistryError(
        'UNAUTHORIZED',
        this.#creds ? `the token server ${realm.origin} refused the credentials for ${this.#registry}` : `the token server ${realm.origin} refused anonymous access to ${scope}`,
        { status: res.status },
      );
    }
    if (res.status < 200 || res.status > 299) throw new RegistryError('REGISTRY_ERROR', `the token server ${realm.origin} answered ${res.status}`, { status: res.status });
    let body: unknown;
    try {
      body = await res.json();
    } catch (err) {
      throw new RegistryError('REGISTRY_ERROR', `the token server ${realm.origin} answered with something other than JSON`, { cause: err });
    }
    const b = (body ?? {}) as { token?: unknown; access_token?: unknown; expires_in?: unknown };
    const token = typeof b.token === 'string' && b.token ? b.token : typeof b.access_token === 'string' && b.access_token ? b.access_token : undefined;
    if (!token) throw new RegistryError('REGISTRY_ERROR', `the token server ${realm.origin} answered without a token`);
    // The spec's default lifetime is 60 s; renew a little early.
    const seconds = typeof b.expires_in === 'number' && b.expires_in > 0 ? b.expires_in : 60;
    this.#tokens.set(scope, { token, expiresAt: Date.now() + Math.max(1, seconds - 5) * 1000 });
    this.#logger.debug({ registry: this.#registry, scope, expiresIn: seconds }, 'got a registry token');
    return token;
  }
}
