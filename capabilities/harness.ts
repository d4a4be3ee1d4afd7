/**
 * What the providers' conformance suites drive: a provider reached the way an actor's host call
 * reaches it (link put, operation with its msgpack payload, link deleted), plus the invocations
 * the provider made on actors. `directHarness` starts a provider in this process with a test
 * context; other harnesses (a provider behind a host) implement the same interface.
 */
import { pino } from 'pino';
import { canonicalContract, normalizeLinkName } from '../host/index.ts';
import type { CapabilityProvider, LogStore, ProviderContext } from '../host/index.ts';

/** One call a provider made on an actor (e.g. a delivered message). */
export interface ActorInvocation {
  actor: string;
  operation: string;
  msg: Uint8Array;
}

/** Answers a provider's call on an actor; throwing makes the call fail with that error. */
export type ActorResponder = (inv: ActorInvocation) => Uint8Array | Promise<Uint8Array>;

export interface ProviderHarness {
  putLink(actor: string, values: Record<string, string>, linkName?: string): Promise<void>;
  deleteLink(actor: string, linkName?: string): Promise<void>;
  /** An actor's host call: resolves with the reply bytes, rejects with the provider's error. */
  call(actor: string, operation: string, msg: Uint8Array, linkName?: string): Promise<Uint8Array>;
  /** Every invocation the provider made on an actor, in order. */
  readonly invocations: ActorInvocation[];
  /** How invocations are answered (default: an empty reply). */
  respond(responder: ActorResponder): void;
  close(): Promise<void>;
}

const silentLogs: LogStore = {
  append() {},
  async *read() {},
  close() {},
};

/** A context with a silent logger whose `invokeActor` is recorded and answered by `responder`. */
export function recordingContext(): { ctx: ProviderContext; invocations: ActorInvocation[]; respond(r: ActorResponder): void } {
  const invocations: ActorInvocation[] = [];
  let responder: ActorResponder = () => new Uint8Array(0);
  const ctx: ProviderContext = {
    hostId: 'NTESTHOST',
    logger: pino({ level: 'silent' }),
    logs: silentLogs,
    invokeActor: async (actor, operation, msg) => {
      const inv = { actor, operation, msg: new Uint8Array(msg) };
      invocations.push(inv);
      return responder(inv);
    },
  };
  return { ctx, invocations, respond: (r) => void (responder = r) };
}

/** Starts `provider` in this process; calls go straight to `handle`. */
export async function directHarness(provider: CapabilityProvider): Promise<ProviderHarness> {
  const { ctx, invocations, respond } = recordingContext();
  await provider.start(ctx);
  const contract = canonicalContract(provider.contract);
  return {
    invocations,
    respond,
    putLink: (actor, values, linkName) => provider.putLink({ actor, contract, linkName: normalizeLinkName(linkName), values }),
    deleteLink: (actor, linkName) => provider.deleteLink({ actor, contract, linkName: normalizeLinkName(linkName), values: {} }),
    call: (actor, operation, msg, linkName) => provider.handle({ actor, linkName: normalizeLinkName(linkName), operation, msg }),
    close: () => provider.stop(),
  };
}
