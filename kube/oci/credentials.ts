/**
 * Registry credentials: reading Kubernetes image pull secrets and choosing the entry that applies
 * to an image, as the kubelet's credential keyring does.
 *
 * Keys may be written as `host`, `host:port`, `https://host/v1/`, `host/path/prefix` or with a
 * `*.` wildcard in the host (`*.example.com`). The most specific match wins: an exact host before
 * a wildcard, a longer path prefix before a shorter one.
 */
import { z } from 'zod';
import { RegistryError } from '../errors.ts';
import { normalizeRegistry } from './reference.ts';

export interface RegistryCredentials {
  registry: string;
  username?: string;
  password?: string;
  /** base64 of `username:password`, as docker config files store it. */
  auth?: string;
  /** An OAuth2 refresh token (docker config `identitytoken`), exchanged for bearer tokens. */
  identitytoken?: string;
}

export const registryCredentialsSchema = z.object({
  registry: z.string().min(1),
  username: z.string().optional(),
  password: z.string().optional(),
  auth: z.string().optional(),
  identitytoken: z.string().optional(),
});

/** Credentials usable on the wire: user/password, or an identity token. */
export interface ResolvedCredentials {
  registry: string;
  username?: string;
  password?: string;
  identityToken?: string;
}

interface DockerAuthEntry {
  auth?: unknown;
  username?: unknown;
  password?: unknown;
  identitytoken?: unknown;
}

function bad(message: string, cause?: unknown): RegistryError {
  return new RegistryError('BAD_CREDENTIALS', message, cause === undefined ? undefined : { cause });
}

function optionalString(value: unknown, field: string, key: string): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string') throw bad(`docker config entry ${JSON.stringify(key)}: ${field} must be a string`);
  return value;
}

/** Splits docker config `auth` (base64 `user:password`). */
export function decodeAuth(auth: string, key: string): { username: string; password: string } {
  const text = Buffer.from(auth, 'base64').toString('utf8');
  const colon = text.indexOf(':');
  if (!/^[A-Za-z0-9+/=\s_-]+$/.test(auth) || colon <= 0) {
    throw bad(`docker config entry ${JSON.stringify(key)}: "auth" is not base64 of "username:password"`);
  }
  return { username: text.slice(0, colon), password: text.slice(colon + 1) };
}

/**
 * Reads the `.dockerconfigjson` of a `kubernetes.io/dockerconfigjson` secret (`{"auths": {…}}`) or
 * the `.dockercfg` of a legacy `kubernetes.io/dockercfg` secret (the map itself). Pass the decoded
 * JSON text (not the base64 the Secret's `data` holds).
 */
export function credentialsFromDockerConfigJson(json: string): RegistryCredentials[] {
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch (err) {
    throw bad('the docker config is not JSON (pass the decoded .dockerconfigjson or .dockercfg, not base64)', err);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw bad('the docker config is not a JSON object');
  const record = doc as Record<string, unknown>;
  // `auths` marks the config.json format; without it the object is the legacy .dockercfg map.
  const entries = 'auths' in record ? record.auths : record;
  if (typeof entries !== 'object' || entries === null || Array.isArray(entries)) throw bad('the docker config "auths" is not an object');
  const out: RegistryCredentials[] = [];
  for (const [key, raw] of Object.entries(entries as Record<string, unknown>)) {
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw bad(`docker config entry ${JSON.stringify(key)} is not an object`);
    const entry = raw as DockerAuthEntry;
    const creds: RegistryCredentials = { registry: key };
    const auth = optionalString(entry.auth, 'auth', key);
    let username = optionalString(entry.username, 'username', key);
    let password = optionalString(entry.password, 'password', key);
    const identitytoken = optionalString(entry.identitytoken, 'identitytoken', key);
    if (auth !== undefined) {
      const decoded = decodeAuth(auth, key);
      username ??= decoded.username;
      password ??= decoded.password;
      creds.auth = auth;
    }
    if (username !== undefined) creds.username = username;
    if (password !== undefined) creds.password = password;
    if (identitytoken !== undefined) creds.identitytoken = identitytoken;
    out.push(creds);
  }
  return out;
}

interface ParsedKey {
  host: string;
  path: string;
  wildcard: boolean;
}

/** `https://Index.Docker.io/v1/` → host `docker.io`, path ``. */
function parseKey(key: string): ParsedKey {
  let rest = key.trim().replace(/^[a-z][a-z0-9+.-]*:\/\//i, '');
  rest = rest.replace(/\/+$/, '');
  const slash = rest.indexOf('/');
  let host = slash >= 0 ? rest.slice(0, slash) : rest;
  let path = slash >= 0 ? rest.slice(slash + 1) : '';
  host = normalizeRegistry(host);
  // Docker Hub's legacy key `https://index.docker.io/v1/` carries an API path, not a repository.
  if (host === 'docker.io' && /^v[12]$/.test(path)) path = '';
  const wildcard = host.startsWith('*.');
  return { host: wildcard ? host.slice(2) : host, path, wildcard };
}

function hostMatches(key: ParsedKey, registry: string): boolean {
  if (!key.wildcard) return key.host === registry;
  // `*.example.com` matches exactly one more label, like the kubelet's keyring.
  const [keyHost, keyPort] = key.host.split(/:(?=\d+$)/);
  const [regHost, regPort] = registry.split(/:(?=\d+$)/);
  if (keyPort !== regPort || !regHost || !keyHost) return false;
  const labels = regHost.split('.');
  return labels.length === keyHost.split('.').length + 1 && labels.slice(1).join('.') === keyHost;
}

/** Credentials with `auth` decoded; undefined when an entry carries nothing usable. */
export function resolveCredentials(creds: RegistryCredentials): ResolvedCredentials | undefined {
  let { username, password } = creds;
  if ((username === undefined || password === undefined) && creds.auth) {
    const decoded = decodeAuth(creds.auth, creds.registry);
    username ??= decoded.username;
    password ??= decoded.password;
  }
  const out: ResolvedCredentials = { registry: creds.registry };
  if (creds.identitytoken) out.identityToken = creds.identitytoken;
  if (username !== undefined && password !== undefined) {
    out.username = username;
    out.password = password;
  }
  return out.identityToken !== undefined || out.username !== undefined ? out : undefined;
}

/** The most specific credentials for `registry/repository`, or undefined. */
export function findCredentials(all: readonly RegistryCredentials[] | undefined, registry: string, repository: string): ResolvedCredentials | undefined {
  let best: { creds: RegistryCredentials; score: number } | undefined;
  const target = normalizeRegistry(registry);
  for (const creds of all ?? []) {
    const key = parseKey(creds.registry);
    if (!hostMatches(key, target)) continue;
    if (key.path && repository !== key.path && !repository.startsWith(`${key.path}/`)) continue;
    const score = (key.wildcard ? 0 : 1_000_000) + key.path.length;
    if (!best || score > best.score) best = { creds, score };
  }
  return best ? resolveCredentials(best.creds) : undefined;
}
