/**
 * The flags that say which lattice a process joins and as whom, shared by `wasmlet host`,
 * `wasmlet provider` and `wasmlet ctl`: `--lattice-creds FILE` (env WASMLET_LATTICE_CREDS), a
 * member credential of a closed lattice, or `--insecure`, an open lattice for development.
 * Without either, nothing joins: the error says how to make a credential. A credential of
 * another role than the command's is refused here too (the lattice would refuse its messages).
 */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { LatticeAuthError } from '../errors.ts';
import { LatticeTrust, parseMemberCredentials, type MemberRole } from './membership.ts';

export interface LatticeFlags {
  latticeCreds?: string;
  insecure?: boolean;
  lattice?: string;
}

/** Adds `--lattice-creds` and `--insecure` to `command`. */
export function addLatticeOptions(command: Command): Command {
  return command
    .option('--lattice-creds <file>', 'member credential of a closed lattice (default WASMLET_LATTICE_CREDS); make one with `wasmlet lattice creds`')
    .option('--insecure', 'join an OPEN lattice: no credentials, nothing authenticated (development only)');
}

/** How to get into a closed lattice, for error messages. */
export const CREDS_HINT =
  'make an issuer once with `wasmlet lattice init --out DIR`, then a credential per member with `wasmlet lattice creds --issuer DIR/issuer.nk --role host|provider|ctl --out FILE`; or pass --insecure for an open development lattice';

/**
 * The trust of the process from its flags (then env). Throws LatticeAuthError: no credential
 * and not `--insecure` (LATTICE_CREDS_MISSING), both, an unreadable or expired credential, or a
 * `--lattice` that is not the credential's (LATTICE_CREDS_INVALID).
 */
export async function latticeTrustFromFlags(flags: LatticeFlags, env: Readonly<Record<string, string | undefined>>, role: MemberRole): Promise<{ trust: LatticeTrust; credsFile?: string }> {
  const credsFile = flags.latticeCreds ?? (flags.insecure ? undefined : env.WASMLET_LATTICE_CREDS);
  if (flags.insecure && flags.latticeCreds !== undefined) throw new LatticeAuthError('LATTICE_CREDS_INVALID', 'give --lattice-creds or --insecure, not both');
  if (flags.insecure) return { trust: LatticeTrust.insecure(flags.lattice ?? env.WASMLET_LATTICE ?? 'default') };
  if (credsFile === undefined) throw new LatticeAuthError('LATTICE_CREDS_MISSING', `lattices are closed: this process needs a member credential (--lattice-creds FILE or WASMLET_LATTICE_CREDS); ${CREDS_HINT}`);
  let bytes: Uint8Array;
  try {
    bytes = await readFile(credsFile);
  } catch (err) {
    throw new LatticeAuthError('LATTICE_CREDS_INVALID', `cannot read lattice credential ${credsFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
  let creds;
  try {
    creds = parseMemberCredentials(bytes);
  } catch (err) {
    throw new LatticeAuthError('LATTICE_CREDS_INVALID', `${credsFile}: ${(err as Error).message}`, { cause: err });
  }
  if (creds.role !== role) throw new LatticeAuthError('LATTICE_CREDS_INVALID', `${credsFile} is a ${creds.role} credential; this command needs a ${role} credential (\`wasmlet lattice creds --role ${role}\`)`);
  const lattice = flags.lattice ?? env.WASMLET_LATTICE;
  if (lattice !== undefined && lattice !== creds.lattice) throw new LatticeAuthError('LATTICE_CREDS_INVALID', `${credsFile} is a credential of lattice ${creds.lattice}, not ${lattice}`);
  return { trust: LatticeTrust.closed(creds), credsFile };
}
