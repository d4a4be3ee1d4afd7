/**
 * Actor lifecycle: loading (claims verified, module compiled) → running → stopping → stopped.
 * A load failure is a transition into `failed` carrying the reason, not a throw.
 */
import { assign, setup } from 'xstate';

export interface ActorMachineContext {
  actor: string;
  error?: string;
  traps: number;
  lastTrap?: string;
}

export type ActorMachineEvent =
  | { type: 'LOADED'; actor: string }
  | { type: 'FAILED'; error: string }
  | { type: 'TRAP'; error: string }
  | { type: 'STOP' }
  | { type: 'STOPPED' };

export const actorMachine = setup({
  types: {
    context: {} as ActorMachineContext,
    events: {} as ActorMachineEvent,
    input: {} as { actor: string },
  },
}).createMachine({
  id: 'actor',
  initial: 'loading',
  context: ({ input }) => ({ actor: input.actor, traps: 0 }),
  states: {
    loading: {
      on: {
        LOADED: { target: 'running', actions: assign({ actor: ({ event }) => event.actor }) },
        FAILED: { target: 'failed', actions: assign({ error: ({ event }) => event.error }) },
        STOP: 'stopped',
      },
    },
    running: {
      on: {
        TRAP: { actions: assign({ traps: ({ context }) => context.traps + 1, lastTrap: ({ event }) => event.error }) },
        STOP: 'stopping',
      },
    },
    stopping: { on: { STOPPED: 'stopped' } },
    stopped: { type: 'final' },
    failed: { type: 'final' },
  },
});
