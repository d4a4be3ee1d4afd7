/**
 * Starts a real OCI registry (Debian's `docker-registry`, the CNCF distribution registry) for
 * tests: loopback only, on a free port, filesystem storage in a temp dir, in the foreground (it
 * dies with the test process). Never uses a registry the machine already runs.
 *
 * Optional auth: htpasswd basic auth (the file is written with bcryptjs, as the registry only reads
 * bcrypt hashes), or bearer token auth: then the helper also runs a small token server (the
 * registry's `auth.token` realm) that checks users and signs ES256 JWTs with a self-signed
 * certificate the registry trusts, so clients go through the real `WWW-Authenticate: Bearer` flow.
 * Fault tests `kill()` (SIGKILL) and `restart()` it: a restarted registry keeps its port and data.
 */
import type { ChildProcess } from 'node:child_process';
import { retry, ServerHandle, spawnUntilReady } from './server-process.ts';
import { X509Certificate, createPrivateKey, randomBytes, sign } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import selfsigned from 'selfsigned';
import { stringify } from 'yaml';
import { freePort } from './redis-server.ts';

export interface OciRegistryUser {
  username: string;
  password: string;
}

/** Bearer token auth through the helper's own token server. */
export interface OciRegistryTokenAuth {
  /** Users the token server accepts (HTTP Basic on the token request). They get pull and push. */
  users: OciRegistryUser[];
  /** OAuth2 refresh tokens (docker `identitytoken`) accepted by the refresh_token grant. */
  identityTokens?: string[];
  /** Anonymous token requests get pull access. Default false (they get a token granting nothing). */
  anonymousPull?: boolean;
}

export interface OciTokenServer {
  /** The realm: `http://127.0.0.1:<port>/token`. */
  realm: string;
  service: string;
  /** Token requests answered so far, by outcome. */
  readonly issued: number;
  readonly refused: number;
}

export interface OciRegistryOptions {
  /** Binary to run. Default `/usr/bin/docker-registry`. */
  binary?: string;
  /** Basic auth (htpasswd) with these users. Default: no auth. */
  users?: OciRegistryUser[];
  /** Bearer token auth with a token server the helper runs. Exclusive with `users`. */
  tokenAuth?: OciRegistryTokenAuth;
  /** How long to wait for `/v2/` to answer, ms. Default 15000. */
  startTimeoutMs?: number;
}

export interface OciRegistry {
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** `127.0.0.1:<port>`: the registry part of image references. */
  host: string;
  port: number;
  /** The temp dir (config, htpasswd and storage live here). */
  dir: string;
  /** Root of the registry's filesystem storage. */
  storageDir: string;
  /** The token server, when started with `tokenAuth`. */
  tokenServer: OciTokenServer | undefined;
  /** Where the registry keeps the bytes of a blob (for tests that corrupt it). */
  blobDataPath(digest: string): string;
  /** Stops the registry and removes its temp dir. Safe to call twice. */
  stop(): Promise<void>;
  /** Stops the registry (if running) and starts it again on the same port with the same data. */
  restart(): Promise<void>;
  /** SIGKILL: the registry dies at once; port and data are kept for `restart()`. */
  kill(): Promise<void>;
  readonly running: boolean;
}



/** True once `/v2/` answers as a registry does (200 without auth, 401 with). */
async function probe(url: string): Promise<boolean> {
  try {
    const res = await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(1000) });
    await res.arrayBuffer();
    return (res.status === 200 || res.status === 401) && res.headers.get('docker-distribution-api-version') === 'registry/2.0';
  } catch {
    return false;
  }
}


async function launch(binary: string, configFile: string, url: string, startTimeoutMs: number): Promise<ChildProcess> {
  return spawnUntilReady({ binary, args: ['serve', configFile], name: 'docker-registry', readiness: `serving ${url}/v2/`, ready: () => probe(url), startTimeoutMs });
}

interface TokenServerHandle extends OciTokenServer {
  issuer: string;
  bundle: string;
  close(): Promise<void>;
}

function base64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

/** Starts the token server: GET (Basic auth or anonymous) and POST refresh_token grants. */
async function startTokenServer(auth: OciRegistryTokenAuth, dir: string): Promise<TokenServerHandle> {
  const pems = await selfsigned.generate([{ name: 'commonName', value: 'wasmlet-test-token-issuer' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate: new Date(Date.now() - 3600_000),
  });
  const bundle = join(dir, 'token-issuer.pem');
  await writeFile(bundle, pems.cert);
  const key = createPrivateKey(pems.private);
  const x5c = [new X509Certificate(pems.cert).raw.toString('base64')];
  const issuer = 'wasmlet-test-issuer';
  const service = 'wasmlet-test-registry';
  const counts = { issued: 0, refused: 0 };

  const jwt = (subject: string, scopes: string[], grantAll: boolean, anonymousPull: boolean): string => {
    const access = scopes.flatMap((scope) => {
      const [type, name, actions] = scope.split(':');
      if (type !== 'repository' || !name || !actions) return [];
      const wanted = actions.split(',');
      const granted = grantAll ? wanted : anonymousPull ? wanted.filter((a) => a === 'pull') : [];
      return [{ type, name, actions: granted }];
    });
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: 'JWT', alg: 'ES256', x5c };
    const claims = { iss: issuer, sub: subject, aud: service, exp: now + 300, nbf: now - 10, iat: now, jti: randomBytes(8).toString('hex'), access };
    const input = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
    const signature = sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
    return `${input}.${base64url(signature)}`;
  };

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://token');
      const reply = (status: number, body: unknown) => {
        if (status === 200) counts.issued++;
        else counts.refused++;
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      };
      if (url.pathname !== '/token') return reply(404, { error: 'not found' });
      let subject = '';
      let scopes = url.searchParams.getAll('scope').flatMap((s) => s.split(' '));
      if (req.method === 'POST') {
        const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
        scopes = (form.get('scope') ?? '').split(' ').filter(Boolean);
        const refresh = form.get('refresh_token') ?? '';
        if (form.get('grant_type') !== 'refresh_token' || !(auth.identityTokens ?? []).includes(refresh)) return reply(401, { error: 'invalid_grant' });
        subject = 'identity-token-user';
        return reply(200, { access_token: jwt(subject, scopes, true, false), expires_in: 300 });
      }
      const header = req.headers.authorization;
      if (header?.startsWith('Basic ')) {
        const text = Buffer.from(header.slice(6), 'base64').toString('utf8');
        const colon = text.indexOf(':');
        const user = auth.users.find((u) => u.username === text.slice(0, colon) && u.password === text.slice(colon + 1));
        if (!user) return reply(401, { errors: [{ code: 'UNAUTHORIZED', message: 'bad credentials' }] });
        subject = user.username;
      }
      reply(200, { token: jwt(subject, scopes, subject !== '', auth.anonymousPull ?? false), expires_in: 300 });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    realm: `http://127.0.0.1:${port}/token`,
    service,
    issuer,
    bundle,
    get issued() {
      return counts.issued;
    },
    get refused() {
      return counts.refused;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function buildConfig(options: OciRegistryOptions, port: number, dir: string, secret: string, token: TokenServerHandle | undefined): Record<string, unknown> {
  const config: Record<string, unknown> = {
    version: 0.1,
    log: { level: 'warn', accesslog: { disabled: true } },
    storage: {
      filesystem: { rootdirectory: join(dir, 'storage') },
      delete: { enabled: true },
      // No `cache` section, so no blob descriptor cache: a blob corrupted on disk is served as it is.
      // No upload purging: its background walk is of no use in short-lived tests.
      maintenance: { uploadpurging: { enabled: false } },
    },
    // A fixed secret keeps upload sessions valid across restart().
    http: { addr: `127.0.0.1:${port}`, secret },
  };
  if (options.users) config.auth = { htpasswd: { realm: 'wasmlet-test', path: join(dir, 'htpasswd') } };
  if (token) config.auth = { token: { realm: token.realm, service: token.service, issuer: token.issuer, rootcertbundle: token.bundle } };
  return config;
}

export async function startOciRegistry(options: OciRegistryOptions = {}): Promise<OciRegistry> {
  if (options.users && options.tokenAuth) throw new Error('startOciRegistry: choose users (basic auth) or tokenAuth, not both');
  const binary = options.binary ?? '/usr/bin/docker-registry';
  const startTimeoutMs = options.startTimeoutMs ?? 15_000;
  const dir = await mkdtemp(join(tmpdir(), 'wasmlet-registry-'));
  const storageDir = join(dir, 'storage');
  const configFile = join(dir, 'config.yml');
  const secret = randomBytes(16).toString('hex');
  let token: TokenServerHandle | undefined;
  try {
    await mkdir(storageDir);
    if (options.tokenAuth) token = await startTokenServer(options.tokenAuth, dir);
    if (options.users) {
      // bcrypt cost 4 (the minimum): the registry checks every request's password, and tests are not attacked.
      const lines = options.users.map((u) => {
        if (u.username.includes(':')) throw new Error(`htpasswd user names cannot contain ":" (${u.username})`);
        return `${u.username}:${bcrypt.hashSync(u.password, 4)}`;
      });
      await writeFile(join(dir, 'htpasswd'), `${lines.join('\n')}\n`, { mode: 0o600 });
    }
  } catch (err) {
    await token?.close();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }

  // Another process may grab the free port between our probe and the registry binding it: retry.
  let port = 0;
  let child: ChildProcess;
  try {
    child = await retry(5, async () => {
      port = await freePort();
      await writeFile(configFile, stringify(buildConfig(options, port, dir, secret, token)));
      return launch(binary, configFile, `http://127.0.0.1:${port}`, startTimeoutMs);
    });
  } catch (err) {
    await token?.close();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }

  const url = `http://127.0.0.1:${port}`;
  const server = new ServerHandle(child);
  let removed = false;
  return {
    url,
    host: `127.0.0.1:${port}`,
    port,
    dir,
    storageDir,
    tokenServer: token,
    blobDataPath(digest: string) {
      const m = /^([a-z0-9]+):([a-f0-9]{2})([a-f0-9]+)$/.exec(digest);
      if (!m) throw new Error(`not a digest: ${digest}`);
      return join(storageDir, 'docker', 'registry', 'v2', 'blobs', m[1]!, m[2]!, `${m[2]}${m[3]}`, 'data');
    },
    get running() {
      return server.running;
    },
    kill: () => server.halt('SIGKILL'),
    async restart() {
      if (removed) throw new Error('docker-registry was stopped for good');
      await server.restart(() => launch(binary, configFile, url, startTimeoutMs));
    },
    async stop() {
      await server.halt();
      if (removed) return;
      removed = true;
      await token?.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
