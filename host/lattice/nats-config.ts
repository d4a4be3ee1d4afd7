/**
 * NATS's own wall around a closed lattice (the second wall; the first is that every lattice
 * message is authenticated, see membership.ts): subject permissions per member role, written
 * into each member credential (a NATS user JWT), and the nats-server configuration that makes a
 * server enforce them (operator mode: the operator signs the lattice's account, the account (the
 * lattice issuer) signs its members).
 *
 * What each role may publish and subscribe to, with P = `wasmlet.<lattice>.<scope>`:
 *
 * | role     | publish                                            | subscribe                         |
 * |----------|----------------------------------------------------|-----------------------------------|
 * | host     | P.rpc.>, P.evt.>, inboxes, JetStream API, KV       | P.rpc.>, P.ctl.>, inboxes          |
 * | provider | P.rpc.actor.>, P.evt.>, inboxes, JetStream API, KV | P.rpc.provider.>, P.ctl.>, inboxes |
 * | ctl      | P.ctl.>, inboxes, JetStream API, the links bucket  | P.evt.>, inboxes                  |
 *
 * So a provider cannot join an actor's queue group nor send control requests, a host cannot
 * send control requests, and ctl cannot invoke anything. JetStream's API is open to every role
 * (the key-value provider names its buckets in link values); what lattice records say is
 * checked by every member anyway (signed records, nats-link-store.ts).
 */
import { encodeAccount, encodeOperator } from '@nats-io/jwt';
import type { MemberRole } from './membership.ts';
import { latticeBucket, subjectPrefix } from './subjects.ts';

/** The NATS permissions of a member of `role` on lattice `lattice` with subject scope `scope`. */
export function rolePermissions(role: MemberRole, lattice: string, scope: string): { pub: { allow: string[] }; sub: { allow: string[] } } {
  const P = subjectPrefix(lattice, scope);
  const inbox = '_INBOX.>';
  const jetstream = ['$JS.API.>', '$JS.FC.>', '$JS.ACK.>'];
  switch (role) {
    case 'host':
      return { pub: { allow: [`${P}.rpc.>`, `${P}.evt.>`, inbox, ...jetstream, '$KV.>'] }, sub: { allow: [`${P}.rpc.>`, `${P}.ctl.>`, inbox] } };
    case 'provider':
      return { pub: { allow: [`${P}.rpc.actor.>`, `${P}.evt.>`, inbox, ...jetstream, '$KV.>'] }, sub: { allow: [`${P}.rpc.provider.>`, `${P}.ctl.>`, inbox] } };
    case 'ctl':
      return { pub: { allow: [`${P}.ctl.>`, inbox, ...jetstream, `$KV.${latticeBucket(lattice, scope, 'links')}.>`] }, sub: { allow: [`${P}.evt.>`, inbox] } };
  }
}

export interface NatsConfigInput {
  lattice: string;
  /** The lattice issuer (account) seed and key; the operator and system account seeds. */
  issuerSeed: string;
  issuer: string;
  operatorSeed: string;
  systemSeed: string;
  system: string;
  /** `host:port` the server listens on. Default `127.0.0.1:4222`. */
  listen?: string;
  /** JetStream's storage directory. Default `./nats-jetstream`. */
  storeDir?: string;
}

/**
 * A nats-server configuration (operator mode, memory resolver with the lattice's account
 * preloaded, JetStream on) under which the lattice's members connect with their creds files
 * and nothing else can connect at all.
 */
export async function natsServerConfig(input: NatsConfigInput): Promise<string> {
  const unlimited = { subs: -1, conn: -1, leaf: -1, imports: -1, exports: -1, data: -1, payload: -1, wildcards: true, mem_storage: -1, disk_storage: -1, streams: -1, consumer: -1 };
  const operator = await encodeOperator(`wasmlet-${input.lattice}`, input.operatorSeed, { system_account: input.system });
  const account = await encodeAccount(`lattice-${input.lattice}`, input.issuer, { limits: unlimited } as never, { signer: input.operatorSeed });
  const system = await encodeAccount('SYS', input.system, {}, { signer: input.operatorSeed });
  const q = (s: string) => JSON.stringify(s);
  return [
    `# nats-server configuration for wasmlet lattice ${input.lattice} (issuer ${input.issuer}).`,
    '# Operator mode: only members holding creds minted by `wasmlet lattice creds` connect, each',
    '# confined to the subjects of its role (written into its credential).',
    `listen: ${q(input.listen ?? '127.0.0.1:4222')}`,
    `jetstream { store_dir: ${q(input.storeDir ?? './nats-jetstream')} }`,
    `operator: ${operator}`,
    `system_account: ${input.system}`,
    'resolver: MEMORY',
    'resolver_preload: {',
    `  ${input.issuer}: ${account}`,
    `  ${input.system}: ${system}`,
    '}',
    '',
  ].join('\n');
}
