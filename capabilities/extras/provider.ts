/**
 * The extras capability provider (`wasmlet:extras`, alias `wascc:extras`): a GUID (UUID v4), a
 * random number in a range and a per-actor sequence number, with waSCC's operations and payloads
 * (see codec.ts).
 *
 * The sequence is kept per actor by this provider, so it is monotonic across every instance of
 * the actor this provider serves (all instances on a host call the host's provider); it starts
 * at 0 as waSCC's did, survives link changes, and is forgotten when the provider stops. Random
 * numbers and GUIDs come from Node's CSPRNG.
 */
import { randomInt, randomUUID } from 'node:crypto';
import { EXTRAS, encode } from '../../host/index.ts';
import type { CapabilityProvider, LinkDefinition, ProviderCall, ProviderContext } from '../../host/index.ts';
import { OperationError } from '../errors.ts';
import { unknownOperation } from '../payload.ts';
import { checkRandomBounds, EXTRAS_OPERATIONS, extrasReply, isExtrasOperation, OP_REQUEST_GUID, OP_REQUEST_RANDOM, parseExtrasRequest } from './codec.ts';

export class ExtrasProvider implements CapabilityProvider {
  readonly contract = EXTRAS;
  readonly name = 'extras';
  readonly #sequences = new Map<string, number>();
  #started = false;

  async start(_ctx: ProviderContext): Promise<void> {
    this.#started = true;
  }

  /** Extras need no per-actor configuration; a link only allows the calls. */
  async putLink(_link: LinkDefinition): Promise<void> {}

  /** The actor's sequence is kept: a link put again later continues it. */
  async deleteLink(_link: LinkDefinition): Promise<void> {}

  async handle(call: ProviderCall): Promise<Uint8Array> {
    if (!this.#started) throw new OperationError('BACKEND_ERROR', 'the extras provider is stopped');
    const op = call.operation;
    if (!isExtrasOperation(op)) unknownOperation('extras', op, EXTRAS_OPERATIONS);
    const req = parseExtrasRequest(op, call.msg);
    let value: string | number;
    if (op === OP_REQUEST_GUID) value = randomUUID();
    else if (op === OP_REQUEST_RANDOM) {
      checkRandomBounds(req);
      // randomInt's range is at most 2^48; u32 bounds always fit.
      value = randomInt(req.min, req.max);
    } else value = this.#next(call.actor);
    return encode(extrasReply(op, req, value));
  }

  #next(actor: string): number {
    const n = this.#sequences.get(actor) ?? 0;
    this.#sequences.set(actor, n + 1);
    return n;
  }

  async stop(): Promise<void> {
    this.#started = false;
    this.#sequences.clear();
  }
}
