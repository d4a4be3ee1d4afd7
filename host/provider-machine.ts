/**
 * Provider lifecycle: starting → running → stopping → stopped. A failed start is a transition
 * into `backoff`, retried with exponential delay (100 ms doubling, capped at 30 s).
 */
import { assign, createActor, fromPromise, setup, type Actor } from 'xstate';
import { WasmletError } from './errors.ts';
import type { CapabilityProvider, ProviderContext } from './types.ts';

export interface ProviderMachineContext {
  name: string;
  attempts: number;
  error?: string;
}

export type ProviderMachineEvent = { type: 'STOP' };

export const providerMachine = setup({
  types: {
    context: {} as ProviderMachineContext,
    events: {} as ProviderMachineEvent,
    input: {} as { name: string },
  },
  actors: {
    start: fromPromise<void>(async () => {
      throw new Error('provider start not provided');
    }),
    stop: fromPromise<void>(async () => {}),
  },
  delays: {
    backoff: ({ context }) => Math.min(30_000, 100 * 2 ** Math.max(0, context.attempts - 1)),
  },
}).createMachine({
  id: 'provider',
  initial: 'starting',
  context: ({ input }) => ({ name: input.name, attempts: 0 }),
  states: {
    starting: {
      invoke: {
        src: 'start',
        onDone: { target: 'running', actions: assign({ attempts: 0, error: undefined }) },
        onError: {
          target: 'backoff',
          actions: assign({ attempts: ({ context }) => context.attempts + 1, error: ({ event }) => String((event.error as Error)?.message ?? event.error) }),
        },
      },
      on: { STOP: 'stopping' },
    },
    backoff: {
      after: { backoff: 'starting' },
      on: { STOP: 'stopped' },
    },
    running: { on: { STOP: 'stopping' } },
    stopping: {
      invoke: { src: 'stop', onDone: 'stopped', onError: 'stopped' },
    },
    stopped: { type: 'final' },
  },
});

export type ProviderActor = Actor<typeof providerMachine>;

/** A started lifecycle for `provider`: its start and stop steps call the provider's. */
export function createProviderActor(provider: CapabilityProvider, ctx: ProviderContext): ProviderActor {
  return createActor(
    providerMachine.provide({
      actors: {
        start: fromPromise(async () => {
          await provider.start(ctx);
        }),
        stop: fromPromise(async () => {
          await provider.stop();
        }),
      },
    }),
    { input: { name: provider.name } },
  ).start();
}

/** Resolves once running; rejects (naming the error) when the first start fails and backoff begins. */
export function untilRunning(machine: ProviderActor): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const s = machine.subscribe((snap) => {
      if (snap.value === 'running') {
        s.unsubscribe();
        resolve();
      } else if (snap.value === 'backoff') {
        s.unsubscribe();
        reject(new WasmletError('PROVIDER_START_FAILED', `provider ${snap.context.name} failed to start: ${snap.context.error}; retrying with backoff`));
      }
    });
    const now = machine.getSnapshot().value;
    if (now === 'running') resolve();
  });
}

/** Stops the lifecycle and resolves when it is done. */
export function stopProviderActor(machine: ProviderActor): Promise<void> {
  return new Promise<void>((resolve) => {
    const s = machine.subscribe((snap) => {
      if (snap.status === 'done') {
        s.unsubscribe();
        resolve();
      }
    });
    machine.send({ type: 'STOP' });
    if (machine.getSnapshot().status === 'done') resolve();
  });
}
