/**
 * Provider lifecycle: starting → running → stopping → stopped. A failed start is a transition
 * into `backoff`, retried with exponential delay (100 ms doubling, capped at 30 s).
 */
import { assign, fromPromise, setup } from 'xstate';

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
