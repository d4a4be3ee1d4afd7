/**
 * `wasmlet actor new NAME` and `wasmlet actor build [DIR]`. Output goes through the injected
 * `io`; failures through commander's error handling (`command.error`), so tests can use
 * `exitOverride()`. Seeds are never printed: only public keys and key file paths.
 *
 * Also runnable on its own: `node --import tsx actors-sdk/cli.ts build demos/hello`.
 */
import { Command, Option } from 'commander';
import { buildActor, type BuildProgress } from './build.ts';
import { isActorBuildError } from './errors.ts';
import { scaffoldActor } from './scaffold.ts';

export interface ActorCliIo {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
}

export interface ActorCliDefaults {
  /** Default for `--keys-dir` (the CLI entry may read it from WASMLET_KEYS_DIR). */
  keysDir?: string;
}

const STEP_LABEL: Record<BuildProgress['step'], string> = {
  typecheck: 'type-check',
  bundle: 'bundle',
  componentize: 'componentize',
  sign: 'sign',
};
const STEP_NUMBER: Record<BuildProgress['step'], number> = { typecheck: 1, bundle: 2, componentize: 3, sign: 4 };

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

/** One progress line per step change; `working` lines every few seconds while a step runs. */
export function progressLine(p: BuildProgress): string | undefined {
  const tag = `[${STEP_NUMBER[p.step]}/4] ${STEP_LABEL[p.step]}`;
  switch (p.state) {
    case 'start':
      return p.step === 'componentize' ? `${tag}… (takes a few seconds the first time)` : `${tag}…`;
    case 'working':
      return `${tag}: still working (${seconds(p.elapsedMs)})`;
    case 'done':
      return `${tag}: done in ${seconds(p.elapsedMs)}`;
    case 'cached':
      return `${tag}: unchanged, reused from the build cache`;
    case 'skipped':
      return `${tag}: skipped`;
  }
}

function message(err: unknown): string {
  if (isActorBuildError(err)) return `${err.message} [${err.code}]`;
  return err instanceof Error ? err.message : String(err);
}

function list(value: string, previous: string[] = []): string[] {
  return [...previous, ...value.split(',').map((s) => s.trim()).filter(Boolean)];
}

export function registerActorCommands(program: Command, io: ActorCliIo, defaults: ActorCliDefaults = {}): Command {
  const actor = program.command('actor').description('write, build and sign TypeScript component actors');

  actor
    .command('new')
    .description('scaffold an actor project: TypeScript source, actor.json (name, capabilities), a test')
    .argument('<name>', 'actor name: lower-case letters, digits and "-"')
    .option('--dir <dir>', 'folder to create (default: ./<name>)')
    .option('--caps <list>', 'capabilities to claim, comma-separated (default: wasmlet:httpserver,wasmlet:keyvalue,wasmlet:logging)', list)
    .action(async function (this: Command, name: string, opts: { dir?: string; caps?: string[] }) {
      try {
        const r = await scaffoldActor(name, { ...(opts.dir ? { dir: opts.dir } : {}), ...(opts.caps ? { capabilities: opts.caps } : {}) });
        io.stdout(`created actor project ${name} in ${r.dir}:\n${r.files.map((f) => `  ${f}`).join('\n')}\nnext: wasmlet actor build ${opts.dir ?? name}\n`);
      } catch (err) {
        this.error(`wasmlet actor new: ${message(err)}`, { exitCode: 1 });
      }
    });

  actor
    .command('build')
    .description('type-check, bundle, componentize and sign an actor project into a signed component')
    .argument('[dir]', 'the project folder (holding actor.json)', '.')
    .option('--keys-dir <dir>', 'where the issuer (account.nk) and module (<name>_module.nk) keys are kept; missing ones are generated', defaults.keysDir)
    .option('--cache-dir <dir>', 'build cache of componentized actors (default: <project>/.wasmlet/cache)')
    .option('-o, --out <file>', 'where to write the signed component (default: actor.json "output", or build/<name>.wasm)')
    .addOption(new Option('--no-typecheck', 'skip the TypeScript type-check'))
    .action(async function (this: Command, dir: string, opts: { keysDir?: string; cacheDir?: string; out?: string; typecheck: boolean }) {
      try {
        const built = await buildActor(dir, {
          ...(opts.keysDir ? { keysDir: opts.keysDir } : {}),
          ...(opts.cacheDir ? { cacheDir: opts.cacheDir } : {}),
          ...(opts.out ? { output: opts.out } : {}),
          ...(opts.typecheck === false ? { typecheck: false } : {}),
          onProgress: (p) => {
            const line = progressLine(p);
            if (line) io.stderr(`${line}\n`);
          },
        });
        const c = built.project.config;
        for (const f of built.keysCreated) io.stderr(`generated key file ${f} (keep it: it is this actor's signing identity)\n`);
        io.stdout(
          [
            `built ${c.name} ${c.version} in ${seconds(built.durationMs)}${built.cached ? ' (component reused from the build cache)' : ''}`,
            `  component: ${built.path} (${(built.bytes.byteLength / 1024 / 1024).toFixed(1)} MiB)`,
            `  actor:     ${built.subject}`,
            `  issuer:    ${built.issuer}`,
            `  caps:      ${c.capabilities.join(', ') || '(none)'}`,
            '',
          ].join('\n'),
        );
      } catch (err) {
        this.error(`wasmlet actor build: ${message(err)}`, { exitCode: 1 });
      }
    });
  return actor;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  // Standalone entry (the `wasmlet` CLI registers the same commands as `wasmlet actor …`).
  const program = new Command('wasmlet-actor').showHelpAfterError();
  const actor = registerActorCommands(program, { stdout: (s) => process.stdout.write(s), stderr: (s) => process.stderr.write(s) }, { ...(process.env.WASMLET_KEYS_DIR ? { keysDir: process.env.WASMLET_KEYS_DIR } : {}) });
  await program.parseAsync(['node', 'wasmlet-actor', 'actor', ...process.argv.slice(2)]).catch((err: unknown) => {
    process.stderr.write(`${message(err)}\n`);
    process.exitCode = 1;
  });
  void actor;
}
