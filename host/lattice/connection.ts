/**
 * NATS connection options for the lattice (hosts, provider processes, `wasmlet ctl`) and the one
 * function that turns them into a connection. Exactly one way to authenticate may be given:
 * user/password, token, nkey (seed or seed file), or a creds file (JWT + nkey). Connection
 * status changes are logged, so an operator sees outages and recoveries without asking.
 */
import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { z } from 'zod';
import {
  connect,
  credsAuthenticator,
  DebugEvents,
  Events,
  nkeyAuthenticator,
  type Authenticator,
  type ConnectionOptions,
  type NatsConnection,
  type TlsOptions,
} from 'nats';
import { seedKind } from '../claims/keys.ts';
import { OptionsError, WasmletError } from '../errors.ts';
import { parseWith } from '../options.ts';

/** Error code of a NATS connection that could not be made (refused, auth, TLS, timeout). */
export const NATS_CONNECT_FAILED = 'NATS_CONNECT_FAILED';

const serverUrl = z
  .string()
  .min(1)
  .refine((s) => parseServerUrl(s) !== undefined, 'a NATS server URL (nats://host:port, tls://host:port or host:port)');

export const natsConnectionOptionsSchema = z
  .object({
    /** Server URLs; the client picks one and fails over to the others (and to servers the cluster announces). */
    servers: z.array(serverUrl).min(1, 'at least one NATS server URL is required'),
    /** User name (with `pass`). */
    user: z.string().min(1).optional(),
    pass: z.string().optional(),
    /** Auth token. */
    token: z.string().min(1).optional(),
    /** User nkey seed (`SU…`). */
    nkeySeed: z.string().min(1).optional(),
    /** File holding a user nkey seed. */
    nkeyFile: z.string().min(1).optional(),
    /** A `.creds` file (user JWT + seed), as `nsc` writes it. */
    credsFile: z.string().min(1).optional(),
    /** TLS files; TLS is also used whenever a server requires it or a URL says `tls://`. */
    tls: z
      .object({
        ca: z.string().min(1).optional(),
        cert: z.string().min(1).optional(),
        key: z.string().min(1).optional(),
      })
      .strict()
      .refine((t) => (t.cert === undefined) === (t.key === undefined), 'cert and key go together')
      .optional(),
    /** Connection name shown by the server (`connz`). Default `wasmlet`. */
    name: z.string().min(1).default('wasmlet'),
    reconnect: z
      .object({
        /** Reconnect attempts per server; -1 (default) = forever. */
        maxAttempts: z.number().int().min(-1).default(-1),
        /** Wait between attempts to one server, ms. Default 1000. */
        waitMs: z.number().int().min(0).max(600_000).default(1000),
        /** Random extra wait, ms (spreads reconnect storms). Default 200. */
        jitterMs: z.number().int().min(0).max(600_000).default(200),
      })
      .strict()
      .prefault({}),
    /** Deadline of one connection attempt, ms. Default 5000. */
    timeoutMs: z.number().int().min(1).max(600_000).default(5000),
    /** Ping interval, ms: a silent server is declared gone after two unanswered pings. Default 10000. */
    pingIntervalMs: z.number().int().min(100).max(3_600_000).default(10_000),
    /** Keep trying (per `reconnect`) when no server answers at startup, rather than failing. Default false. */
    waitOnFirstConnect: z.boolean().default(false),
    /** Pick servers in random order (spreads clients over a cluster). Default true. */
    randomize: z.boolean().default(true),
  })
  .strict()
  .superRefine((o, ctx) => {
    const ways = [
      o.user !== undefined || o.pass !== undefined ? 'user/pass' : undefined,
      o.token !== undefined ? 'token' : undefined,
      o.nkeySeed !== undefined || o.nkeyFile !== undefined ? 'nkey' : undefined,
      o.credsFile !== undefined ? 'creds file' : undefined,
    ].filter((w): w is string => w !== undefined);
    if (ways.length > 1) ctx.addIssue({ code: 'custom', message: `give one way to authenticate, not ${ways.join(' and ')}` });
    if ((o.user === undefined) !== (o.pass === undefined)) ctx.addIssue({ code: 'custom', path: ['pass'], message: 'user and pass go together' });
    if (o.nkeySeed !== undefined && o.nkeyFile !== undefined) ctx.addIssue({ code: 'custom', path: ['nkeyFile'], message: 'give nkeySeed or nkeyFile, not both' });
    if (o.nkeySeed !== undefined && seedKind(o.nkeySeed.trim()) !== 'user') {
      // Never echo the seed.
      ctx.addIssue({ code: 'custom', path: ['nkeySeed'], message: 'not a user nkey seed (SU…)' });
    }
  });

export type NatsConnectionOptionsInput = z.input<typeof natsConnectionOptionsSchema>;
export type NatsConnectionOptions = z.output<typeof natsConnectionOptionsSchema>;

/** Validates and fills in defaults; throws OptionsError naming every bad field (never a secret). */
export function parseNatsConnectionOptions(input: unknown): NatsConnectionOptions {
  return parseWith(natsConnectionOptionsSchema, 'NATS connection options', input);
}

/** `host:port` → URL with scheme `nats:`; undefined when unparsable or not nats:/tls:. */
function parseServerUrl(text: string): URL | undefined {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `nats://${text}`;
  try {
    const u = new URL(withScheme);
    if (u.protocol !== 'nats:' && u.protocol !== 'tls:') return undefined;
    if (!u.hostname) return undefined;
    return u;
  } catch {
    return undefined;
  }
}

/** A server URL with credentials masked, for logs and messages. */
export function redactServer(text: string): string {
  const u = parseServerUrl(text);
  if (!u) return text.replace(/\/\/[^@/]*@/, '//***@');
  if (u.username) u.username = '***';
  if (u.password) u.password = '***';
  return `${u.protocol}//${u.username ? `${u.username}${u.password ? ':***' : ''}@` : ''}${u.host}`;
}

async function readSecretFile(path: string, what: string): Promise<Uint8Array> {
  try {
    return await readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new OptionsError(`invalid NATS connection options: ${what} ${path} cannot be read (${code})`, { cause: err });
  }
}

/** A user nkey seed from a file (the first line that looks like one). */
async function seedFromFile(path: string): Promise<Uint8Array> {
  const text = new TextDecoder().decode(await readSecretFile(path, 'nkeyFile'));
  const seed = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .find((l) => seedKind(l) === 'user');
  if (!seed) throw new OptionsError(`invalid NATS connection options: nkeyFile ${path} holds no user nkey seed (SU…)`);
  return new TextEncoder().encode(seed);
}

/** The `nats` package's connection options for `o` (reads key, creds and TLS files). */
export async function toNatsConnectOptions(o: NatsConnectionOptions): Promise<ConnectionOptions> {
  const servers = o.servers.map((s) => {
    const u = parseServerUrl(s)!;
    return `${u.protocol}//${u.host}`;
  });
  // Credentials written into a URL (nats://user:pass@host, nats://token@host) are honoured too.
  let { user, pass, token } = o;
  for (const s of o.servers) {
    const u = parseServerUrl(s)!;
    if (u.username && u.password && user === undefined && token === undefined) {
      user = decodeURIComponent(u.username);
      pass = decodeURIComponent(u.password);
    } else if (u.username && !u.password && token === undefined && user === undefined) {
      token = decodeURIComponent(u.username);
    }
  }
  const opts: ConnectionOptions = {
    servers,
    name: o.name,
    reconnect: true,
    maxReconnectAttempts: o.reconnect.maxAttempts,
    reconnectTimeWait: o.reconnect.waitMs,
    reconnectJitter: o.reconnect.jitterMs,
    reconnectJitterTLS: o.reconnect.jitterMs,
    timeout: o.timeoutMs,
    pingInterval: o.pingIntervalMs,
    maxPingOut: 2,
    waitOnFirstConnect: o.waitOnFirstConnect,
    noRandomize: !o.randomize,
  };
  if (user !== undefined) {
    opts.user = user;
    opts.pass = pass ?? '';
  }
  if (token !== undefined) opts.token = token;
  let authenticator: Authenticator | undefined;
  if (o.nkeySeed !== undefined) authenticator = nkeyAuthenticator(new TextEncoder().encode(o.nkeySeed.trim()));
  if (o.nkeyFile !== undefined) authenticator = nkeyAuthenticator(await seedFromFile(o.nkeyFile));
  if (o.credsFile !== undefined) authenticator = credsAuthenticator(await readSecretFile(o.credsFile, 'credsFile'));
  if (authenticator) opts.authenticator = authenticator;
  const wantsTls = o.tls !== undefined || o.servers.some((s) => parseServerUrl(s)!.protocol === 'tls:');
  if (wantsTls) {
    const tls: TlsOptions = {};
    // Read the files here so a missing one is an options error, not a connect failure.
    if (o.tls?.ca) tls.ca = new TextDecoder().decode(await readSecretFile(o.tls.ca, 'tls.ca'));
    if (o.tls?.cert) tls.cert = new TextDecoder().decode(await readSecretFile(o.tls.cert, 'tls.cert'));
    if (o.tls?.key) tls.key = new TextDecoder().decode(await readSecretFile(o.tls.key, 'tls.key'));
    opts.tls = tls;
  }
  return opts;
}

/**
 * Connects to NATS. Rejects with OptionsError for invalid options (or unreadable files) and
 * WasmletError(NATS_CONNECT_FAILED) when no server accepts the connection. Logs disconnects,
 * reconnects and server errors on `logger` until the connection closes.
 */
export async function connectNats(input: NatsConnectionOptionsInput | NatsConnectionOptions, logger: Logger): Promise<NatsConnection> {
  const o = parseNatsConnectionOptions(input);
  const opts = await toNatsConnectOptions(o);
  const where = o.servers.map(redactServer).join(', ');
  let nc: NatsConnection;
  try {
    nc = await connect(opts);
  } catch (err) {
    const detail = err instanceof Error ? `${(err as { code?: string }).code ?? ''} ${err.message}`.trim() : String(err);
    throw new WasmletError(NATS_CONNECT_FAILED, `cannot connect to NATS at ${where}: ${detail}`, { cause: err });
  }
  const log = logger.child({ nats: o.name });
  log.info({ server: nc.getServer(), servers: where }, 'nats connected');
  void logStatus(nc, log);
  return nc;
}

async function logStatus(nc: NatsConnection, log: Logger): Promise<void> {
  try {
    for await (const s of nc.status()) {
      switch (s.type) {
        case Events.Disconnect:
          log.warn({ server: s.data }, 'nats disconnected; reconnecting');
          break;
        case Events.Reconnect:
          log.info({ server: s.data }, 'nats reconnected');
          break;
        case Events.Error:
          log.error({ err: String(s.data) }, 'nats error');
          break;
        case Events.LDM:
          log.warn({ server: s.data }, 'nats server entering lame duck mode');
          break;
        case Events.Update:
          log.debug({ update: s.data }, 'nats cluster update');
          break;
        case DebugEvents.Reconnecting:
          log.debug('nats reconnecting');
          break;
        case DebugEvents.StaleConnection:
          log.warn('nats connection stale (pings unanswered)');
          break;
        default:
          log.trace({ status: s.type }, 'nats status');
      }
    }
  } catch (err) {
    log.debug({ err }, 'nats status iterator ended');
  }
  const err = await nc.closed();
  if (err) log.error({ err: err.message }, 'nats connection closed with an error');
  else log.info('nats connection closed');
}

/** Whether a connection is up right now (nats.js does not say; its status events do). */
export interface ConnectionState {
  readonly connected: boolean;
}

const states = new WeakMap<NatsConnection, ConnectionState>();

/**
 * The live state of `nc`, tracked from its status events (one tracker per connection, shared).
 * Lets callers fail at once while NATS is down instead of waiting for a request timeout.
 */
export function connectionState(nc: NatsConnection): ConnectionState {
  let state = states.get(nc);
  if (state) return state;
  const s = { connected: !nc.isClosed() };
  state = {
    get connected() {
      return s.connected && !nc.isClosed();
    },
  };
  states.set(nc, state);
  void (async () => {
    try {
      for await (const e of nc.status()) {
        if (e.type === Events.Disconnect) s.connected = false;
        else if (e.type === Events.Reconnect) s.connected = true;
      }
    } catch {
      // ends with the connection
    }
    s.connected = false;
  })();
  return state;
}
