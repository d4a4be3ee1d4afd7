/**
 * One run of a WASI container: its argv (command + args, `$(VAR)` expanded), env and preopened
 * mounts go to `runWasi` (its own worker, stoppable at any moment); stdout and stderr lines go to
 * the host's LogStore under the container's log id, so `kubectl logs` shows them.
 */
import { randomBytes } from 'node:crypto';
import type { V1Container } from '@kubernetes/client-node';
import { LineSplitter, runWasi, type LogStore } from '../host/index.ts';
import { expandVars } from './env.ts';
import type { ContainerExit } from './pod-machine.ts';

export interface WasiContainerRun {
  module: WebAssembly.Module;
  container: V1Container;
  env: Record<string, string>;
  preopens: Record<string, string>;
  logs: LogStore;
  logId: string;
  signal: AbortSignal;
  /** Called as the program starts, with its container id (`wasmlet://wasi-…`). */
  onStart(containerID: string): void;
}

/** argv: `command` (or the container name as argv[0]) followed by `args`, with `$(VAR)` expanded. */
export function wasiArgv(container: V1Container, env: Record<string, string>): string[] {
  const command = (container.command ?? []).map((a) => expandVars(a, env));
  const args = (container.args ?? []).map((a) => expandVars(a, env));
  return command.length ? [...command, ...args] : [container.name, ...args];
}

export async function runWasiContainer(r: WasiContainerRun): Promise<ContainerExit> {
  const runId = `wasi-${randomBytes(8).toString('hex')}`;
  const splitters = { 1: new LineSplitter(), 2: new LineSplitter() } as const;
  const emit = (fd: 1 | 2) => (line: string) =>
    r.logs.append(r.logId, { time: Date.now(), level: fd === 2 ? 'warn' : 'info', stream: fd === 1 ? 'stdout' : 'stderr', msg: line });
  r.onStart(`wasmlet://${runId}`);
  const exit = await runWasi({
    module: r.module,
    args: wasiArgv(r.container, r.env),
    env: r.env,
    preopens: r.preopens,
    signal: r.signal,
    onOutput: (fd, data) => splitters[fd].push(data, emit(fd)),
  });
  splitters[1].flush(emit(1));
  splitters[2].flush(emit(2));
  if (exit.reason === 'stopped') return { exitCode: 137, reason: 'Killed', message: 'stopped by the node agent' };
  if (exit.reason === 'trap') return { exitCode: exit.exitCode || 1, reason: 'Error', ...(exit.message ? { message: `trap: ${exit.message}` } : {}) };
  return { exitCode: exit.exitCode };
}
