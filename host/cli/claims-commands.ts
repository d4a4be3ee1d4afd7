/**
 * CLI commands for signed actors: `claims inspect`, `claims sign`, `keys gen`.
 * Output goes through the injected `io`; failures go through commander's error handling
 * (`command.error`), so the CLI entry decides how to exit and tests can use `exitOverride()`.
 * Seeds are never printed, except by `keys gen` without `--out`, where printing is the point.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { Option, type Command } from 'commander';
import { integerArg } from './args.ts';
import { isWasmletError } from '../errors.ts';
import { writeAtomically } from '../fs-util.ts';
import type { ActorClaims } from '../types.ts';
import { inspectActor, signActor, type ActorInspection, type SignActorOptions } from '../claims/claims.ts';
import { KEY_KINDS, generateKeyPair, type KeyKind } from '../claims/keys.ts';

export interface CliIo {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
}

/** nkey seeds are 58 base32 characters starting with S. */
const SEED_SHAPE = /^S[A-Z2-7]{57}$/;

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** A seed given literally, or the path of a file holding one. Never echoes the value. */
async function readSeed(value: string, option: string): Promise<string> {
  const literal = value.trim();
  if (SEED_SHAPE.test(literal)) return literal;
  let text: string;
  try {
    text = await readFile(value, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new Error(`${option}: neither a seed nor a readable file (${code})`, { cause: err });
  }
  const seed = text.split(/\r?\n/).map((l) => l.trim()).find((l) => SEED_SHAPE.test(l));
  if (!seed) throw new Error(`${option}: the file ${value} holds no nkey seed`);
  return seed;
}


function date(seconds: number | undefined, absent: string): string {
  if (seconds === undefined) return absent;
  const d = new Date(seconds * 1000);
  return Number.isNaN(d.getTime()) ? String(seconds) : d.toISOString();
}

function renderInspection(file: string, inspection: ActorInspection): string {
  const { claims, hash, checks, section } = inspection;
  const w = claims.wascap;
  const rows: Array<[string, string]> = [
    ['file', file],
    ['subject', claims.sub],
    ['issuer', claims.iss],
    ['name', w.name ?? '(none)'],
    ['caps', w.caps?.length ? w.caps.join(', ') : '(none)'],
    ['tags', w.tags?.length ? w.tags.join(', ') : '(none)'],
    ['issued at', date(claims.iat, '(unknown)')],
    ['expires', date(claims.exp, 'never')],
    ['not before', date(claims.nbf, 'immediately')],
  ];
  if (w.rev !== undefined) rows.push(['revision', String(w.rev)]);
  if (w.ver !== undefined) rows.push(['version', w.ver]);
  rows.push(['hash', w.hash], ['module hash', hash], ['section', section], ['token id', claims.jti]);
  const width = Math.max(...rows.map(([k]) => k.length)) + 1;
  const lines = rows.map(([k, v]) => `${`${k}:`.padEnd(width)} ${v}`);
  lines.push('checks:');
  const checkWidth = Math.max(...checks.map((c) => c.name.length));
  for (const c of checks) lines.push(`  ${c.name.padEnd(checkWidth)}  ${c.ok ? 'ok' : `FAILED: ${c.reason}`}`);
  return `${lines.join('\n')}\n`;
}

function jsonInspection(file: string, inspection: ActorInspection): unknown {
  const { claims, token, hash, checks, section } = inspection;
  return {
    file,
    valid: checks.every((c) => c.ok),
    subject: claims.sub,
    issuer: claims.iss,
    dates: { iat: date(claims.iat, ''), exp: claims.exp === undefined ? null : date(claims.exp, ''), nbf: claims.nbf === undefined ? null : date(claims.nbf, '') },
    hash,
    section,
    checks,
    claims,
    token,
  };
}

interface SignFlags {
  account: string;
  module?: string;
  name: string;
  cap?: string[];
  tag?: string[];
  expiresIn?: number;
  exp?: number;
  nbf?: number;
  notBeforeIn?: number;
  rev?: number;
  ver?: string;
  out: string;
}

function summarizeSigned(out: string, claims: ActorClaims, generatedModule: boolean): string {
  const lines = [
    `signed ${out}`,
    `  subject: ${claims.sub}${generatedModule ? ' (new module key; its seed was not kept: pass --module to keep an identity across re-signing)' : ''}`,
    `  issuer:  ${claims.iss}`,
    `  name:    ${claims.wascap.name}`,
    `  caps:    ${claims.wascap.caps?.join(', ') || '(none)'}`,
    `  hash:    ${claims.wascap.hash}`,
  ];
  if (claims.exp !== undefined) lines.push(`  expires: ${date(claims.exp, '')}`);
  if (claims.nbf !== undefined) lines.push(`  not before: ${date(claims.nbf, '')}`);
  return `${lines.join('\n')}\n`;
}

/** Adds `claims inspect`, `claims sign` and `keys gen` to `program`. */
export function registerClaimsCommands(program: Command, io: CliIo): void {
  const output = { writeOut: io.stdout, writeErr: io.stderr };

  const claims = program.command('claims').description('inspect and sign actor claims (waSCC JWT in the "jwt" section)');
  claims.configureOutput(output);

  claims
    .command('inspect')
    .description('show the claims of a signed module or component and check its signature, hash and validity dates')
    .argument('<file>', 'a .wasm module or component')
    .option('--json', 'print JSON')
    .action(async (file: string, flags: { json?: boolean }, cmd: Command) => {
      let inspection: ActorInspection;
      try {
        inspection = inspectActor(await readFile(file));
      } catch (err) {
        cmd.error(`error: ${file}: ${errorText(err)}`, { exitCode: 1, code: isWasmletError(err) ? err.code : 'claims.read' });
      }
      io.stdout(flags.json ? `${JSON.stringify(jsonInspection(file, inspection), null, 2)}\n` : renderInspection(file, inspection));
      const failed = inspection.checks.filter((c) => !c.ok);
      if (failed.length) {
        cmd.error(`error: ${file}: ${failed.length} check(s) failed: ${failed.map((c) => c.name).join(', ')}`, {
          exitCode: 1,
          code: 'claims.check-failed',
        });
      }
    });

  claims
    .command('sign')
    .description('sign a module or component (any existing claims are replaced)')
    .argument('<file>', 'the .wasm to sign')
    .requiredOption('--account <seed-or-file>', "the signing account's seed (SA…), or a file holding it")
    .option('--module <seed-or-file>', "the module's seed (SM…), or a file holding it (default: a new key)")
    .requiredOption('--name <name>', 'the actor name')
    .option('--cap <contract>', 'a capability contract the actor may call (repeatable)', collect)
    .option('--tag <tag>', 'a tag (repeatable)', collect)
    .addOption(new Option('--expires-in <seconds>', 'expire this many seconds from now').argParser(integerArg('--expires-in', 1)).conflicts('exp'))
    .addOption(new Option('--exp <unix>', 'expire at this time (seconds since the epoch)').argParser(integerArg('--exp', 0)))
    .addOption(new Option('--nbf <unix>', 'not valid before this time (seconds since the epoch)').argParser(integerArg('--nbf', 0)).conflicts('notBeforeIn'))
    .addOption(new Option('--not-before-in <seconds>', 'not valid until this many seconds from now').argParser(integerArg('--not-before-in', 0)))
    .option('--rev <n>', 'revision number', integerArg('--rev', 0))
    .option('--ver <version>', 'human-readable version')
    .requiredOption('-o, --out <file>', 'where to write the signed .wasm')
    .action(async (file: string, flags: SignFlags, cmd: Command) => {
      try {
        const now = Math.floor(Date.now() / 1000);
        const options: SignActorOptions = {
          account: await readSeed(flags.account, '--account'),
          name: flags.name,
          caps: flags.cap ?? [],
          now,
        };
        if (flags.module !== undefined) options.module = await readSeed(flags.module, '--module');
        if (flags.tag) options.tags = flags.tag;
        if (flags.rev !== undefined) options.rev = flags.rev;
        if (flags.ver !== undefined) options.ver = flags.ver;
        const exp = flags.exp ?? (flags.expiresIn !== undefined ? now + flags.expiresIn : undefined);
        const nbf = flags.nbf ?? (flags.notBeforeIn !== undefined ? now + flags.notBeforeIn : undefined);
        if (exp !== undefined) options.expiresAt = exp;
        if (nbf !== undefined) options.notBefore = nbf;
        const signed = signActor(await readFile(file), options);
        await writeAtomically(flags.out, signed.bytes);
        io.stdout(summarizeSigned(flags.out, signed.claims, flags.module === undefined));
      } catch (err) {
        cmd.error(`error: cannot sign ${file}: ${errorText(err)}`, { exitCode: 1, code: isWasmletError(err) ? err.code : 'claims.sign' });
      }
    });

  const keys = program.command('keys').description('nkey key pairs (accounts sign actors; modules are their identities)');
  keys.configureOutput(output);
  keys
    .command('gen')
    .description('generate a key pair: prints the public key; the seed goes to --out (mode 0600) or, without --out, to stdout')
    .argument('<kind>', `one of ${KEY_KINDS.join(', ')}`)
    .option('--out <file>', 'write the seed to this new file (mode 0600; an existing file is never overwritten)')
    .action(async (kind: string, flags: { out?: string }, cmd: Command) => {
      if (!(KEY_KINDS as readonly string[]).includes(kind)) {
        cmd.error(`error: unknown key kind ${JSON.stringify(kind)} (expected one of ${KEY_KINDS.join(', ')})`, { exitCode: 1, code: 'keys.kind' });
      }
      const pair = generateKeyPair(kind as KeyKind);
      if (flags.out === undefined) {
        io.stdout(`public key: ${pair.publicKey}\nseed: ${pair.seed}\n`);
        io.stderr('keep the seed secret: anyone holding it can sign as this key\n');
        return;
      }
      try {
        // 'wx': never replace an existing key file, which could destroy the only copy of a seed.
        await writeFile(flags.out, `${pair.seed}\n`, { mode: 0o600, flag: 'wx' });
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        const why = code === 'EEXIST' ? 'the file already exists (not overwritten)' : errorText(err);
        cmd.error(`error: cannot write the seed to ${flags.out}: ${why}`, { exitCode: 1, code: 'keys.write' });
      }
      io.stdout(`public key: ${pair.publicKey}\n`);
      io.stderr(`seed written to ${flags.out} (mode 0600)\n`);
    });
}
