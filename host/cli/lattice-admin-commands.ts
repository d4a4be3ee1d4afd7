/**
 * `wasmlet lattice …`: the commands of a lattice's operator (membership.ts explains the model).
 *
 *     wasmlet lattice init --out DIR [--lattice ID]       the issuer (printed: its public key)
 *     wasmlet lattice creds --issuer DIR/issuer.nk --role host|provider|ctl
 *                           [--name N] [--expires-in SECONDS] --out FILE
 *     wasmlet lattice nats-config --issuer DIR/issuer.nk [--listen HOST:PORT] [--store-dir DIR]
 *     wasmlet lattice inspect FILE                        what a creds file admits (never the seed)
 *
 * Secrets are written 0600 and never printed; nothing is overwritten.
 */
import { constants } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { InvalidArgumentError, type Command } from 'commander';
import { isWasmletError } from '../errors.ts';
import { initIssuer, loadIssuer } from '../lattice/issuer.ts';
import { MEMBER_ROLES, mintMemberCredentials, parseMemberCredentials, type MemberRole } from '../lattice/membership.ts';
import { natsServerConfig } from '../lattice/nats-config.ts';
import { latticeScope, subjectPrefix } from '../lattice/subjects.ts';
import { integerArg } from './args.ts';

export interface LatticeAdminIo {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
}

function role(value: string): MemberRole {
  if (!(MEMBER_ROLES as readonly string[]).includes(value)) throw new InvalidArgumentError(`a role is one of: ${MEMBER_ROLES.join(', ')}`);
  return value as MemberRole;
}

/** Writes a new file, mode 0600; refuses to replace one. */
async function writeSecret(path: string, data: Uint8Array): Promise<void> {
  let fh;
  try {
    fh = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new Error(`${path} exists already; not replacing it`);
    throw new Error(`cannot write ${path}: ${(err as Error).message}`);
  }
  try {
    await fh.writeFile(data);
    await fh.chmod(0o600);
  } finally {
    await fh.close();
  }
}

function expiry(ms: number | undefined): string {
  return ms === undefined ? 'never' : new Date(ms).toISOString();
}

export function registerLatticeAdminCommands(program: Command, io: LatticeAdminIo): void {
  const output = { writeOut: io.stdout, writeErr: io.stderr };
  const fail = (cmd: Command, err: unknown) => cmd.error(`error: ${err instanceof Error ? err.message : String(err)}${isWasmletError(err) ? ` [${err.code}]` : ''}`, { exitCode: 1, code: 'lattice.failed' });
  const lattice = program.command('lattice').description('make a closed lattice: its issuer, member credentials, a nats-server configuration');
  lattice.configureOutput(output);

  lattice
    .command('init')
    .description("create a lattice's issuer key (and the keys its nats-server configuration needs) in a directory")
    .requiredOption('--out <dir>', 'directory for the issuer (created 0700; existing keys are never replaced)')
    .option('--lattice <id>', 'the lattice id its members join', 'default')
    .configureOutput(output)
    .action(async (flags: { out: string; lattice: string }, cmd: Command) => {
      try {
        const issuer = await initIssuer(flags.out, flags.lattice);
        io.stdout(`${issuer.issuer}\n`);
        io.stderr(
          `lattice ${issuer.lattice}: issuer ${issuer.issuer} in ${flags.out} (subjects ${subjectPrefix(issuer.lattice, latticeScope(issuer.issuer))}.>)\n` +
            `next: wasmlet lattice creds --issuer ${flags.out}/issuer.nk --role host --out host.creds\n`,
        );
      } catch (err) {
        fail(cmd, err);
      }
    });

  lattice
    .command('creds')
    .description('mint a member credential (a NATS .creds file: user JWT signed by the issuer, and the member seed)')
    .requiredOption('--issuer <file>', "the issuer's seed file (DIR/issuer.nk from `lattice init`)")
    .requiredOption('--role <role>', `${MEMBER_ROLES.join(' | ')}`, role)
    .requiredOption('--out <file>', 'where to write the credential (0600; never replaced)')
    .option('--name <name>', 'a name shown in logs (default: the role)')
    .option('--expires-in <seconds>', 'the credential expires after this many seconds (default: never)', integerArg('--expires-in', 1))
    .configureOutput(output)
    .action(async (flags: { issuer: string; role: MemberRole; out: string; name?: string; expiresIn?: number }, cmd: Command) => {
      try {
        const issuer = await loadIssuer(flags.issuer);
        const creds = await mintMemberCredentials(issuer, { role: flags.role, ...(flags.name ? { name: flags.name } : {}), ...(flags.expiresIn ? { expiresInSeconds: flags.expiresIn } : {}) });
        await writeSecret(flags.out, creds.creds);
        io.stdout(`${creds.key}\n`);
        io.stderr(`${flags.role} credential for lattice ${creds.lattice} written to ${flags.out} (host id ${creds.hostId}, expires ${expiry(creds.expires)})\n`);
      } catch (err) {
        fail(cmd, err);
      }
    });

  lattice
    .command('nats-config')
    .description('print a nats-server configuration (operator mode) that admits only members, each confined to its role\'s subjects')
    .requiredOption('--issuer <file>', "the issuer's seed file (DIR/issuer.nk)")
    .option('--listen <host:port>', 'where the server listens', '127.0.0.1:4222')
    .option('--store-dir <dir>', "JetStream's storage directory", './nats-jetstream')
    .configureOutput(output)
    .action(async (flags: { issuer: string; listen: string; storeDir: string }, cmd: Command) => {
      try {
        const issuer = await loadIssuer(flags.issuer);
        io.stdout(await natsServerConfig({ ...issuer, listen: flags.listen, storeDir: flags.storeDir }));
      } catch (err) {
        fail(cmd, err);
      }
    });

  lattice
    .command('inspect')
    .description('show what a member credential admits (lattice, role, issuer, expiry); never the seed')
    .argument('<file>', 'a .creds file')
    .option('--json', 'print JSON')
    .configureOutput(output)
    .action(async (file: string, flags: { json?: boolean }, cmd: Command) => {
      try {
        const c = parseMemberCredentials(await readFile(file));
        const shown = { lattice: c.lattice, role: c.role, name: c.name, key: c.key, hostId: c.hostId, issuer: c.issuer, subjects: `${subjectPrefix(c.lattice, latticeScope(c.issuer))}.>`, expires: expiry(c.expires) };
        io.stdout(flags.json ? `${JSON.stringify(shown, null, 2)}\n` : `${Object.entries(shown).map(([k, v]) => `${k.padEnd(9)} ${v}`).join('\n')}\n`);
      } catch (err) {
        fail(cmd, err);
      }
    });
}
