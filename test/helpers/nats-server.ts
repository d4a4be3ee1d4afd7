/**
 * Starts real `nats-server` processes for tests: loopback only, on free ports, JetStream on
 * (file store in a temp dir), in the foreground (they die with the test process). Never uses a
 * NATS server the machine already runs. Fault tests `kill()` (SIGKILL) and `restart()` them: a
 * restarted server keeps its port and its store dir, so acknowledged JetStream data survives.
 *
 * The server is configured through a JSON config file (nats-server reads JSON as its config
 * format), which keeps auth, TLS and cluster routes in one place.
 */
import type { ChildProcess } from 'node:child_process';
import { lineProbe, retry, ServerHandle, spawnUntilReady } from './server-process.ts';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './redis-server.ts';

export { freePort };

/** Ports handed out by this process: the OS may offer a just-freed port twice in a row. */
const handedOut = new Set<number>();
async function distinctFreePort(): Promise<number> {
  for (;;) {
    const p = await freePort();
    if (!handedOut.has(p)) {
      handedOut.add(p);
      return p;
    }
  }
}

export interface NatsServerAuth {
  /** `authorization { token }` */
  token?: string;
  /** Users with passwords. */
  users?: { user: string; password: string }[];
  /** Users identified by an nkey (public key `U…`). */
  nkeys?: string[];
}

export interface NatsServerTls {
  certFile: string;
  keyFile: string;
  caFile?: string;
  /** Require client certificates. Default false. */
  verify?: boolean;
}

export interface NatsServerOptions {
  /** Binary to run. Default `/usr/sbin/nats-server` when present, else `nats-server` from PATH. */
  binary?: string;
  /** JetStream with a file store in the temp dir. Default true. */
  jetstream?: boolean;
  auth?: NatsServerAuth;
  tls?: NatsServerTls;
  /** Server name (JetStream clusters need unique ones). Default `wasmlet-test-<port>`. */
  name?: string;
  /** Cluster membership (see `startNatsCluster`). */
  cluster?: { name: string; port: number; routes: number[] };
  /** How long to wait for the server to accept clients, ms. Default 10000. */
  startTimeoutMs?: number;
  /** Use this client port instead of a free one (the cluster helper picks ports up front). */
  port?: number;
  /**
   * A configuration of the caller's own, in nats-server's configuration format, for the port and
   * JetStream store dir given (e.g. what `wasmlet lattice nats-config` prints). Replaces every
   * other option but `binary`, `port` and `startTimeoutMs`; the monitoring port is added.
   */
  configText?: (listen: { port: number; storeDir: string }) => string | Promise<string>;
}

export interface NatsServer {
  /** `nats://127.0.0.1:<port>` */
  url: string;
  port: number;
  /** Monitoring port (`/varz`, `/routez`, `/healthz`). */
  monitorPort: number;
  /** Name the server runs under. */
  name: string;
  /** The temp dir (store and config live here). */
  dir: string;
  /** Stops the server and removes its temp dir. Safe to call twice. */
  stop(): Promise<void>;
  /** Stops the server (if running) and starts it again on the same port with the same store dir. */
  restart(): Promise<void>;
  /** SIGKILL: the server dies at once; port and dir are kept for `restart()`. */
  kill(): Promise<void>;
  /** True while the process runs. */
  readonly running: boolean;
}



function defaultBinary(): string {
  return '/usr/sbin/nats-server';
}

interface LaunchPlan {
  binary: string;
  port: number;
  configFile: string;
  startTimeoutMs: number;
}

async function launch(plan: LaunchPlan): Promise<ChildProcess> {
  return spawnUntilReady({ binary: plan.binary, args: ['-c', plan.configFile], name: 'nats-server', readiness: `accepting clients on port ${plan.port}`, ready: () => lineProbe(plan.port, 'INFO '), startTimeoutMs: plan.startTimeoutMs });
}

function buildConfig(o: NatsServerOptions, port: number, monitorPort: number, name: string, dir: string): Record<string, unknown> {
  const config: Record<string, unknown> = {
    server_name: name,
    listen: `127.0.0.1:${port}`,
    http: `127.0.0.1:${monitorPort}`,
  };
  if (o.jetstream ?? true) config.jetstream = { store_dir: join(dir, 'jetstream') };
  const auth = o.auth;
  if (auth) {
    const users: Record<string, string>[] = [];
    for (const u of auth.users ?? []) users.push({ user: u.user, password: u.password });
    for (const k of auth.nkeys ?? []) users.push({ nkey: k });
    const authorization: Record<string, unknown> = {};
    if (auth.token) authorization.token = auth.token;
    if (users.length) authorization.users = users;
    config.authorization = authorization;
  }
  if (o.tls) {
    config.tls = {
      cert_file: o.tls.certFile,
      key_file: o.tls.keyFile,
      ...(o.tls.caFile ? { ca_file: o.tls.caFile } : {}),
      verify: o.tls.verify ?? false,
      timeout: 2,
    };
  }
  if (o.cluster) {
    config.cluster = {
      name: o.cluster.name,
      listen: `127.0.0.1:${o.cluster.port}`,
      routes: o.cluster.routes.map((p) => `nats://127.0.0.1:${p}`),
    };
  }
  return config;
}

export async function startNatsServer(options: NatsServerOptions = {}): Promise<NatsServer> {
  const binary = options.binary ?? defaultBinary();
  const startTimeoutMs = options.startTimeoutMs ?? 10_000;
  const dir = await mkdtemp(join(tmpdir(), 'wasmlet-nats-'));
  const configFile = join(dir, options.configText ? 'nats-server.conf' : 'nats-server.json');

  // Another process may grab a free port between our probe and the server binding it: retry.
  let port = 0;
  let monitorPort = 0;
  let name = '';
  let child: ChildProcess;
  try {
    child = await retry(options.port ? 1 : 5, async () => {
      port = options.port ?? (await distinctFreePort());
      monitorPort = await distinctFreePort();
      name = options.name ?? `wasmlet-test-${port}`;
      const text = options.configText
        ? `${await options.configText({ port, storeDir: join(dir, 'jetstream') })}\nhttp: "127.0.0.1:${monitorPort}"\nserver_name: "${name}"\n`
        : JSON.stringify(buildConfig(options, port, monitorPort, name, dir), null, 2);
      await writeFile(configFile, text);
      return launch({ binary, port, configFile, startTimeoutMs });
    });
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }

  const server = new ServerHandle(child);
  let removed = false;
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    monitorPort,
    name,
    dir,
    get running() {
      return server.running;
    },
    kill: () => server.halt('SIGKILL'),
    async restart() {
      if (removed) throw new Error('nats-server was stopped for good');
      await server.restart(() => launch({ binary, port, configFile, startTimeoutMs }));
    },
    async stop() {
      await server.halt();
      if (removed) return;
      removed = true;
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface NatsCluster {
  servers: NatsServer[];
  /** Every client URL, for a client that should fail over between them. */
  urls: string[];
  stop(): Promise<void>;
  /** Resolves when every running server has a route to every other running one. */
  waitForRoutes(timeoutMs?: number): Promise<void>;
}

/** Number of routes a server reports on its monitoring port (`/routez`). */
async function routeCount(server: NatsServer): Promise<number> {
  try {
    const res = await fetch(`http://127.0.0.1:${server.monitorPort}/routez`, { signal: AbortSignal.timeout(1000) });
    const body = (await res.json()) as { num_routes?: number };
    return body.num_routes ?? 0;
  } catch {
    return -1;
  }
}

/**
 * Starts `size` servers routed into one cluster. JetStream is off by default here: a clustered
 * JetStream needs a meta leader elected, which the bus tests do not need.
 */
export async function startNatsCluster(size = 3, options: Omit<NatsServerOptions, 'cluster' | 'port' | 'name'> = {}): Promise<NatsCluster> {
  const clusterPorts: number[] = [];
  const clientPorts: number[] = [];
  for (let i = 0; i < size; i++) {
    clusterPorts.push(await distinctFreePort());
    clientPorts.push(await distinctFreePort());
  }
  const name = `wasmlet-test-${clusterPorts[0]}`;
  const servers: NatsServer[] = [];
  try {
    for (let i = 0; i < size; i++) {
      servers.push(
        await startNatsServer({
          jetstream: false,
          ...options,
          port: clientPorts[i]!,
          name: `${name}-${i}`,
          cluster: { name, port: clusterPorts[i]!, routes: clusterPorts.filter((_, j) => j !== i) },
        }),
      );
    }
  } catch (err) {
    await Promise.all(servers.map((s) => s.stop()));
    throw err;
  }
  const cluster: NatsCluster = {
    servers,
    urls: servers.map((s) => s.url),
    async stop() {
      await Promise.all(servers.map((s) => s.stop()));
    },
    async waitForRoutes(timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const running = servers.filter((s) => s.running);
        const counts = await Promise.all(running.map(routeCount));
        if (counts.every((c) => c >= running.length - 1)) return;
        if (Date.now() > deadline) throw new Error(`nats cluster routes not established within ${timeoutMs} ms (routes: ${counts.join(', ')})`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
  };
  await cluster.waitForRoutes();
  return cluster;
}
