/**
 * `hostPort`: a container port reachable on the node's address too. As in Kubernetes it is a
 * mapping, not where the actor listens: the actor's server listens on podIP:containerPort and a
 * TCP forwarder on nodeAddress:hostPort passes each connection through to it, bytes untouched.
 * Connections are bounded per forwarder.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import type { V1Container } from '@kubernetes/client-node';
import { WasmletError } from '../host/index.ts';
import { isPodError, podSpecError, PodError } from './errors.ts';

export interface HostPortMapping {
  hostIP: string;
  hostPort: number;
  podIP: string;
  containerPort: number;
}

const MAX_CONNECTIONS = 1024;

/** One forwarder: listening on hostIP:hostPort, dialing podIP:containerPort per connection. */
export class HostPortForwarder {
  readonly mapping: HostPortMapping;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();

  private constructor(mapping: HostPortMapping, logger: Logger) {
    this.mapping = mapping;
    this.#server = createServer((client) => this.#forward(client, logger));
    this.#server.maxConnections = MAX_CONNECTIONS;
  }

  /** Starts listening; rejects with a WasmletError naming the port when it is taken. */
  static async open(mapping: HostPortMapping, logger: Logger): Promise<HostPortForwarder> {
    const f = new HostPortForwarder(mapping, logger);
    await new Promise<void>((resolve, reject) => {
      f.#server.once('error', (err: NodeJS.ErrnoException) =>
        reject(new WasmletError('HOST_PORT_UNAVAILABLE', `hostPort ${mapping.hostIP}:${mapping.hostPort} cannot be opened: ${err.code ?? err.message}`, { cause: err })),
      );
      f.#server.listen(mapping.hostPort, mapping.hostIP, () => resolve());
    });
    return f;
  }

  #forward(client: Socket, logger: Logger): void {
    const upstream = connect(this.mapping.containerPort, this.mapping.podIP);
    this.#sockets.add(client);
    this.#sockets.add(upstream);
    const done = () => {
      client.destroy();
      upstream.destroy();
      this.#sockets.delete(client);
      this.#sockets.delete(upstream);
    };
    client.on('error', done).on('close', done);
    upstream
      .on('error', (err) => {
        logger.debug({ err: err.message, ...this.mapping }, 'hostPort connection failed');
        done();
      })
      .on('close', done);
    client.pipe(upstream);
    upstream.pipe(client);
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const s of this.#sockets) s.destroy();
    await closed;
  }
}

/** Forwards each TCP hostPort of a container to podIP:containerPort (unless that is the same address and port). */
export async function openHostPorts(container: V1Container, hostIP: string, podIP: string, logger: Logger): Promise<HostPortForwarder[]> {
  const open: HostPortForwarder[] = [];
  try {
    for (const p of container.ports ?? []) {
      if (!p.hostPort || (p.protocol ?? 'TCP') !== 'TCP' || (hostIP === podIP && p.hostPort === p.containerPort)) continue;
      if (p.hostIP && p.hostIP !== hostIP && p.hostIP !== '0.0.0.0') throw podSpecError(`container ${container.name}: hostIP ${p.hostIP} is not this node's address (${hostIP})`, container.name);
      open.push(await HostPortForwarder.open({ hostIP, hostPort: p.hostPort, podIP, containerPort: p.containerPort }, logger));
    }
    return open;
  } catch (err) {
    await Promise.all(open.map((f) => f.close()));
    if (isPodError(err)) throw err;
    throw new PodError('START_FAILED', `container ${container.name}: ${(err as Error).message}`, { reason: 'RunContainerError', fatal: false, container: container.name, cause: err });
  }
}
