/** Test stand-ins for the lattice tests: a lattice issuer in memory, a fake host behind a ControlServer. */
import { generateKeyPair } from '../claims/keys.ts';
import { LatticeTrust, mintMemberCredentials, type MemberCredentials, type MemberRole, type MintOptions } from './membership.ts';
import { ClaimsError, WasmletError } from '../errors.ts';
import { normalizeLink } from '../links.ts';
import type { LinkDefinition } from '../types.ts';
import type { ControlHost, HostInventory, InventoryActor, LinkInput, StartActorRequest, StartedActor } from './control-protocol.ts';
import type { NatsLinkStore } from './nats-link-store.ts';

/** A lattice issuer held in memory, minting member credentials and trusts (no files). */
export class TestIssuer {
  private constructor(
    readonly lattice: string,
    readonly issuer: string,
    readonly issuerSeed: string,
  ) {}

  static create(lattice = 'test'): TestIssuer {
    const k = generateKeyPair('account');
    return new TestIssuer(lattice, k.publicKey, k.seed);
  }

  creds(role: MemberRole, options: Omit<MintOptions, 'role'> = {}): Promise<MemberCredentials> {
    return mintMemberCredentials({ lattice: this.lattice, issuer: this.issuer, issuerSeed: this.issuerSeed }, { role, ...options });
  }

  async trust(role: MemberRole, options: Omit<MintOptions, 'role'> = {}): Promise<LatticeTrust> {
    return LatticeTrust.closed(await this.creds(role, options));
  }
}

/** kvcounter's module key. */
export const TEST_ACTOR = 'MASCXFM4R6X63UD5MSCDZYCJNPBVSIU6RKMXUPXRKAOSBQ6UY3VT3NPZ';

/** A host stand-in: actors in a map, links in the lattice bucket. */
export class FakeHost implements ControlHost {
  readonly actors = new Map<string, InventoryActor>();
  constructor(
    readonly links: NatsLinkStore,
    readonly zone: string,
    /** The host id: its member key (`N…`). */
    readonly id: string = generateKeyPair('server').publicKey,
  ) {}
  labels() {
    return { zone: this.zone };
  }
  inventory(): HostInventory {
    return { hostId: this.id, labels: this.labels(), actors: [...this.actors.values()], providers: [{ name: 'keyvalue', contract: 'wasmlet:keyvalue', linkName: 'default', state: 'running' }] };
  }
  async startActor(req: StartActorRequest): Promise<StartedActor> {
    if (req.ref.endsWith('unsigned.wasm')) throw new ClaimsError('CLAIMS_MISSING', `${req.ref} carries no jwt section`);
    const actor = { id: TEST_ACTOR, name: req.ref, state: 'running', config: req.config ?? {} };
    this.actors.set(actor.id, actor);
    const claims = { jti: 'j', iat: 1, iss: 'AAGRUXXTGSP4C27RWPTMCHCJF56JD53EQPA2R7RPC5VI4E274KPRMMJ5', sub: TEST_ACTOR, wascap: { name: req.ref, hash: 'H', caps: ['wascc:keyvalue'] } };
    return { actor, claims };
  }
  async stopActor(actor: string): Promise<boolean> {
    return this.actors.delete(actor);
  }
  async putLink(input: LinkInput): Promise<LinkDefinition> {
    if (input.values?.PORT === 'nope') throw new WasmletError('LINK_INVALID', 'PORT must be a port number, got "nope"');
    const link = normalizeLink(input);
    await this.links.put(link);
    return link;
  }
  async deleteLink(actor: string, contract: string, linkName?: string): Promise<boolean> {
    return (await this.links.delete(actor, contract, linkName)) !== undefined;
  }
}

