/**
 * A lattice issuer on disk, as `wasmlet lattice init --out DIR` writes it:
 *
 *     DIR/issuer.nk     the issuer: an account nkey seed (SA…) that signs member credentials (0600)
 *     DIR/operator.nk   operator seed that signs the account in the nats-server configuration (0600)
 *     DIR/system.nk     the system account seed the nats-server configuration names (0600)
 *     DIR/lattice.json  {lattice, issuer, operator, system}: the public keys (0644)
 *
 * Only the issuer signs members; the other two exist for `wasmlet lattice nats-config`.
 */
import { constants } from 'node:fs';
import { mkdir, open, readFile, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { generateKeyPair, isPublicKey, seedKind, signingKey } from '../claims/keys.ts';
import { LatticeAuthError } from '../errors.ts';
import { latticeIdSchema } from './subjects.ts';

export const ISSUER_FILE = 'issuer.nk';
const OPERATOR_FILE = 'operator.nk';
const SYSTEM_FILE = 'system.nk';
const LATTICE_FILE = 'lattice.json';

export interface IssuerDir {
  dir: string;
  lattice: string;
  issuer: string;
  issuerSeed: string;
  operatorSeed: string;
  system: string;
  systemSeed: string;
}

const latticeFileSchema = z.object({
  lattice: latticeIdSchema,
  issuer: z.string().refine((k) => isPublicKey(k, 'account'), 'an account public key (A…)'),
  operator: z.string().refine((k) => isPublicKey(k, 'operator'), 'an operator public key (O…)'),
  system: z.string().refine((k) => isPublicKey(k, 'account'), 'an account public key (A…)'),
});

/** Writes `text` to a new file with `mode`; refuses to replace an existing one. */
async function writeNew(path: string, text: string, mode: number): Promise<void> {
  let fh;
  try {
    fh = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new LatticeAuthError('LATTICE_ISSUER_EXISTS', `${path} exists already; not replacing it (a new issuer would lock every member out)`);
    throw new LatticeAuthError('LATTICE_ISSUER_UNREADABLE', `cannot write ${path}: ${(err as Error).message}`, { cause: err });
  }
  try {
    await fh.writeFile(text);
    await fh.chmod(mode);
  } finally {
    await fh.close();
  }
}

/** Creates a lattice issuer in `dir` (created 0700 when missing). Refuses to overwrite one. */
export async function initIssuer(dir: string, lattice: string): Promise<IssuerDir> {
  latticeIdSchema.parse(lattice);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  for (const f of [ISSUER_FILE, OPERATOR_FILE, SYSTEM_FILE, LATTICE_FILE]) {
    const exists = await stat(join(dir, f)).then(() => true, () => false);
    if (exists) throw new LatticeAuthError('LATTICE_ISSUER_EXISTS', `${join(dir, f)} exists already; not replacing it (a new issuer would lock every member out)`);
  }
  const issuer = generateKeyPair('account');
  const operator = generateKeyPair('operator');
  const system = generateKeyPair('account');
  await writeNew(join(dir, ISSUER_FILE), `${issuer.seed}\n`, 0o600);
  await writeNew(join(dir, OPERATOR_FILE), `${operator.seed}\n`, 0o600);
  await writeNew(join(dir, SYSTEM_FILE), `${system.seed}\n`, 0o600);
  await writeNew(join(dir, LATTICE_FILE), `${JSON.stringify({ lattice, issuer: issuer.publicKey, operator: operator.publicKey, system: system.publicKey }, null, 2)}\n`, 0o644);
  return { dir, lattice, issuer: issuer.publicKey, issuerSeed: issuer.seed, operatorSeed: operator.seed, system: system.publicKey, systemSeed: system.seed };
}

async function readSeed(path: string, kind: 'account' | 'operator'): Promise<string> {
  let text: string;
  try {
    text = (await readFile(path, 'utf8')).trim();
  } catch (err) {
    throw new LatticeAuthError('LATTICE_ISSUER_UNREADABLE', `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
  if (seedKind(text) !== kind) throw new LatticeAuthError('LATTICE_ISSUER_UNREADABLE', `${path} does not hold ${kind === 'account' ? 'an account' : 'an operator'} nkey seed`);
  return text;
}

/** Loads the issuer whose seed is `issuerFile` (its `lattice.json` and other seeds beside it). */
export async function loadIssuer(issuerFile: string): Promise<IssuerDir> {
  const dir = dirname(issuerFile);
  const issuerSeed = await readSeed(issuerFile, 'account');
  let meta: z.infer<typeof latticeFileSchema>;
  try {
    meta = latticeFileSchema.parse(JSON.parse(await readFile(join(dir, LATTICE_FILE), 'utf8')));
  } catch (err) {
    throw new LatticeAuthError('LATTICE_ISSUER_UNREADABLE', `${join(dir, LATTICE_FILE)} is missing or malformed (written by \`wasmlet lattice init\`): ${(err as Error).message}`, { cause: err });
  }
  const issuer = signingKey(issuerSeed, 'account').publicKey;
  if (issuer !== meta.issuer) throw new LatticeAuthError('LATTICE_ISSUER_UNREADABLE', `${issuerFile} is not the issuer ${meta.issuer} that ${LATTICE_FILE} names`);
  const operatorSeed = await readSeed(join(dir, OPERATOR_FILE), 'operator');
  const systemSeed = await readSeed(join(dir, SYSTEM_FILE), 'account');
  return { dir, lattice: meta.lattice, issuer, issuerSeed, operatorSeed, system: meta.system, systemSeed };
}
