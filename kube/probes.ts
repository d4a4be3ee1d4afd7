/**
 * Container probes, as the kubelet runs them: `startupProbe`, `readinessProbe`, `livenessProbe`
 * with `httpGet` (path, port by number or name, headers, scheme) or `tcpSocket` actions against
 * the pod's own address, and Kubernetes' timing fields and defaults (initialDelaySeconds 0,
 * periodSeconds 10, timeoutSeconds 1, successThreshold 1, failureThreshold 3).
 *
 * - A startup probe runs first and alone; once it succeeds the others start. Failing it
 *   `failureThreshold` times in a row kills the container, as liveness does.
 * - Readiness: the container is ready after `successThreshold` successes in a row, not ready after
 *   `failureThreshold` failures in a row; it starts not ready.
 * - Liveness: `failureThreshold` failures in a row kill the container (the pod's restartPolicy
 *   decides what follows).
 *
 * `exec` and `grpc` probes, and probes of any other host than the pod, are refused: a wasm
 * workload has no processes to exec, and the node probes nothing but its own pods.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import type { V1Container, V1Probe } from '@kubernetes/client-node';
import { PodError } from './errors.ts';

export type ProbeKind = 'startup' | 'readiness' | 'liveness';

export type ProbeAction =
  | { type: 'http'; scheme: 'http' | 'https'; host: string; port: number; path: string; headers: [string, string][] }
  | { type: 'tcp'; host: string; port: number };

export interface ProbeSpec {
  kind: ProbeKind;
  action: ProbeAction;
  initialDelayMs: number;
  periodMs: number;
  timeoutMs: number;
  successThreshold: number;
  failureThreshold: number;
}

export interface ProbeResult {
  ok: boolean;
  /** Why it failed, worded as the kubelet words it. */
  message: string;
}

/** The Kubernetes version the probes' User-Agent names (`kube-probe/1.32`). */
const PROBE_USER_AGENT = 'kube-probe/1.32';
/** Probe answers are read up to this much, then dropped. */
const MAX_BODY = 10 * 1024;

const KIND_FIELD: Record<ProbeKind, 'startupProbe' | 'readinessProbe' | 'livenessProbe'> = { startup: 'startupProbe', readiness: 'readinessProbe', liveness: 'livenessProbe' };
const TITLE: Record<ProbeKind, string> = { startup: 'Startup', readiness: 'Readiness', liveness: 'Liveness' };

export function probeTitle(kind: ProbeKind): string {
  return TITLE[kind];
}

function unsupported(container: string, message: string): PodError {
  return new PodError('INVALID_POD_SPEC', `container ${container}: ${message}`, { reason: 'UnsupportedProbe', fatal: true, container });
}

function int(value: number | undefined, def: number, min: number, what: string, container: string): number {
  if (value === undefined || value === null) return def;
  if (!Number.isInteger(value) || value < min) throw unsupported(container, `${what} must be an integer >= ${min}, got ${JSON.stringify(value)}`);
  return value;
}

function portOf(container: V1Container, port: number | string | undefined, where: string): number {
  if (typeof port === 'number' || (typeof port === 'string' && /^\d+$/.test(port))) {
    const n = Number(port);
    if (n < 1 || n > 65535) throw unsupported(container.name, `${where}: port ${port} is out of range`);
    return n;
  }
  const named = (container.ports ?? []).find((p) => p.name === port);
  if (!named) throw unsupported(container.name, `${where}: no container port is named ${JSON.stringify(port)}`);
  return named.containerPort;
}

function actionOf(container: V1Container, probe: V1Probe, where: string, podIP: string | undefined): ProbeAction {
  const p = probe as V1Probe & { grpc?: unknown };
  const sameHost = (host: string | undefined) => {
    if (host && podIP !== undefined && host !== podIP) throw unsupported(container.name, `${where}: probes reach only the pod's own address (${podIP}), not ${JSON.stringify(host)}`);
  };
  if (p.exec) throw unsupported(container.name, `${where}: exec probes are not supported for wasm workloads (there is no process to run a command in); use httpGet or tcpSocket`);
  if (p.grpc) throw unsupported(container.name, `${where}: grpc probes are not supported on this node; use httpGet or tcpSocket`);
  if (p.httpGet) {
    sameHost(p.httpGet.host);
    const scheme = (p.httpGet.scheme ?? 'HTTP').toUpperCase();
    if (scheme !== 'HTTP' && scheme !== 'HTTPS') throw unsupported(container.name, `${where}: scheme ${p.httpGet.scheme} is not HTTP or HTTPS`);
    const path = p.httpGet.path ?? '/';
    return {
      type: 'http',
      scheme: scheme === 'HTTPS' ? 'https' : 'http',
      host: podIP ?? '',
      port: portOf(container, p.httpGet.port as number | string, where),
      path: path.startsWith('/') ? path : `/${path}`,
      headers: (p.httpGet.httpHeaders ?? []).map((h) => [h.name, h.value]),
    };
  }
  if (p.tcpSocket) {
    sameHost(p.tcpSocket.host);
    return { type: 'tcp', host: podIP ?? '', port: portOf(container, p.tcpSocket.port as number | string, where) };
  }
  throw unsupported(container.name, `${where}: it names no action (httpGet or tcpSocket)`);
}

/**
 * The probes of a container, validated; throws a fatal PodError (reason UnsupportedProbe) for an
 * exec or grpc probe, another host, a missing port name or a bad timing field.
 */
export function probeSpecs(container: V1Container, podIP: string): ProbeSpec[] {
  return specsOf(container, podIP);
}

/** Checks a container's probes before it has an address (before anything is pulled). */
export function validateProbes(container: V1Container): void {
  specsOf(container, undefined);
}

function specsOf(container: V1Container, podIP: string | undefined): ProbeSpec[] {
  const out: ProbeSpec[] = [];
  for (const kind of ['startup', 'readiness', 'liveness'] as const) {
    const probe = container[KIND_FIELD[kind]];
    if (!probe) continue;
    const where = `${KIND_FIELD[kind]}`;
    const successThreshold = int(probe.successThreshold, 1, 1, `${where}.successThreshold`, container.name);
    if (kind !== 'readiness' && successThreshold !== 1) throw unsupported(container.name, `${where}.successThreshold must be 1 for ${kind} probes`);
    out.push({
      kind,
      action: actionOf(container, probe, where, podIP),
      initialDelayMs: int(probe.initialDelaySeconds, 0, 0, `${where}.initialDelaySeconds`, container.name) * 1000,
      periodMs: int(probe.periodSeconds, 10, 1, `${where}.periodSeconds`, container.name) * 1000,
      timeoutMs: int(probe.timeoutSeconds, 1, 1, `${where}.timeoutSeconds`, container.name) * 1000,
      successThreshold,
      failureThreshold: int(probe.failureThreshold, 3, 1, `${where}.failureThreshold`, container.name),
    });
  }
  return out;
}

function target(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

function tcpProbe(a: Extract<ProbeAction, { type: 'tcp' }>, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const socket = connect({ host: a.host, port: a.port });
    const dial = `dial tcp ${target(a.host, a.port)}`;
    const timer = setTimeout(() => finish({ ok: false, message: `${dial}: i/o timeout` }), timeoutMs);
    function finish(r: ProbeResult): void {
      clearTimeout(timer);
      socket.destroy();
      resolve(r);
    }
    socket.once('connect', () => finish({ ok: true, message: '' }));
    socket.once('error', (err: NodeJS.ErrnoException) => finish({ ok: false, message: `${dial}: connect: ${err.code === 'ECONNREFUSED' ? 'connection refused' : (err.code ?? err.message)}` }));
  });
}

function httpProbe(a: Extract<ProbeAction, { type: 'http' }>, timeoutMs: number): Promise<ProbeResult> {
  const url = `${a.scheme}://${target(a.host, a.port)}${a.path}`;
  const headers: Record<string, string> = { 'User-Agent': PROBE_USER_AGENT, Accept: '*/*' };
  for (const [name, value] of a.headers) headers[name] = value;
  return new Promise((resolve) => {
    const req = (a.scheme === 'https' ? httpsRequest : httpRequest)(url, { method: 'GET', headers, agent: false, ...(a.scheme === 'https' ? { rejectUnauthorized: false } : {}) });
    const timer = setTimeout(() => finish({ ok: false, message: `Get "${url}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)` }), timeoutMs);
    let settled = false;
    function finish(r: ProbeResult): void {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      resolve(r);
    }
    req.once('response', (res: IncomingMessage) => {
      let read = 0;
      res.on('data', (chunk: Buffer) => {
        read += chunk.length;
        if (read > MAX_BODY) res.destroy();
      });
      const status = res.statusCode ?? 0;
      const r = status >= 200 && status < 400 ? { ok: true, message: '' } : { ok: false, message: `HTTP probe failed with statuscode: ${status}` };
      res.once('end', () => finish(r));
      res.once('close', () => finish(r));
    });
    req.once('error', (err: NodeJS.ErrnoException) => finish({ ok: false, message: `Get "${url}": dial tcp ${target(a.host, a.port)}: connect: ${err.code === 'ECONNREFUSED' ? 'connection refused' : (err.code ?? err.message)}` }));
    req.end();
  });
}

/** Runs one probe action once, within `timeoutMs`. */
export function runProbe(action: ProbeAction, timeoutMs: number): Promise<ProbeResult> {
  return action.type === 'tcp' ? tcpProbe(action, timeoutMs) : httpProbe(action, timeoutMs);
}

export interface ProbeHandlers {
  /** Readiness changed (only called when a readiness probe exists). */
  ready(ready: boolean): void;
  /** The startup probe succeeded (only called when one exists). */
  started(): void;
  /** One probe attempt failed (the kubelet's `Unhealthy` event). */
  unhealthy(kind: ProbeKind, message: string): void;
  /** Liveness or startup failed `failureThreshold` times in a row: the container must be killed. */
  failed(kind: 'liveness' | 'startup', message: string): void;
}

/** The probe loops of one running container. */
export class ContainerProbes {
  readonly #specs: ProbeSpec[];
  readonly #handlers: ProbeHandlers;
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #startedAt = Date.now();
  #stopped = false;
  /** Probe attempts made (for measurements). */
  attempts = 0;

  constructor(specs: ProbeSpec[], handlers: ProbeHandlers) {
    this.#specs = specs;
    this.#handlers = handlers;
  }

  get hasReadiness(): boolean {
    return this.#specs.some((s) => s.kind === 'readiness');
  }

  get hasStartup(): boolean {
    return this.#specs.some((s) => s.kind === 'startup');
  }

  start(): void {
    const startup = this.#specs.find((s) => s.kind === 'startup');
    if (startup) this.#loop(startup);
    else this.#startOthers();
  }

  stop(): void {
    this.#stopped = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
  }

  #startOthers(): void {
    for (const s of this.#specs) if (s.kind !== 'startup') this.#loop(s);
  }

  #after(ms: number, fn: () => void): void {
    if (this.#stopped) return;
    const t = setTimeout(() => {
      this.#timers.delete(t);
      if (!this.#stopped) fn();
    }, ms);
    this.#timers.add(t);
  }

  /** One probe's loop: first run after its initial delay (counted from the container's start), then every period. */
  #loop(spec: ProbeSpec): void {
    let successes = 0;
    let failures = 0;
    let ready = false;
    const tick = async (): Promise<void> => {
      this.attempts++;
      const r = await runProbe(spec.action, spec.timeoutMs);
      if (this.#stopped) return;
      if (r.ok) {
        successes++;
        failures = 0;
      } else {
        failures++;
        successes = 0;
        this.#handlers.unhealthy(spec.kind, r.message);
      }
      if (spec.kind === 'startup') {
        if (r.ok) {
          this.#handlers.started();
          this.#startOthers();
          return;
        }
        if (failures >= spec.failureThreshold) return this.#handlers.failed('startup', r.message);
      } else if (spec.kind === 'liveness') {
        if (failures >= spec.failureThreshold) return this.#handlers.failed('liveness', r.message);
      } else if (!ready && successes >= spec.successThreshold) {
        ready = true;
        this.#handlers.ready(true);
      } else if (ready && failures >= spec.failureThreshold) {
        ready = false;
        this.#handlers.ready(false);
      }
      this.#after(spec.periodMs, () => void tick());
    };
    this.#after(Math.max(0, this.#startedAt + spec.initialDelayMs - Date.now()), () => void tick());
  }
}

/** What a container's probes report to (only while `current()` holds: late verdicts are dropped). */
export interface ProbeHooks {
  current(): boolean;
  /** Readiness, or startup passed (`started`, and `ready` when there is no readiness probe). */
  probed(verdict: { ready?: boolean; started?: boolean }): void;
  /** One failed attempt, worded as the kubelet's `Unhealthy` Event. */
  unhealthy(message: string): void;
  failed(kind: 'liveness' | 'startup'): void;
}

/** The probes of a running container, reporting through `hooks`; call `start()` once it runs. */
export function probesFor(container: V1Container, podIP: string, hooks: ProbeHooks): ContainerProbes {
  const probes: ContainerProbes = new ContainerProbes(probeSpecs(container, podIP), {
    ready: (ready) => hooks.current() && hooks.probed({ ready }),
    started: () => hooks.current() && hooks.probed({ started: true, ...(probes.hasReadiness ? {} : { ready: true }) }),
    unhealthy: (kind, message) => hooks.current() && hooks.unhealthy(`${probeTitle(kind)} probe failed: ${message}`),
    failed: (kind) => hooks.current() && hooks.failed(kind),
  });
  return probes;
}
