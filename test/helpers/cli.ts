/**
 * Runs CLI commands in-process for tests: `register` adds them to a fresh `wasmlet` program whose
 * output is captured and whose every (sub)command throws instead of exiting.
 */
import { Command, CommanderError } from 'commander';

export interface CliRun {
  stdout: string;
  stderr: string;
  /** Set when commander stopped with an error (bad arguments, a failing action's exit). */
  error?: CommanderError;
}

export interface CapturedIo {
  stdout(s: string): void;
  stderr(s: string): void;
}

/** `wasmlet ARGS…` with the commands `register` adds; `extra` joins the io handed to them. */
export async function runCli<Extra extends object>(
  register: (program: Command, io: CapturedIo & Extra) => void,
  args: string[],
  extra: Extra = {} as Extra,
): Promise<CliRun> {
  const out: string[] = [];
  const err: string[] = [];
  const io = { stdout: (s: string) => void out.push(s), stderr: (s: string) => void err.push(s), ...extra };
  const program = new Command('wasmlet').configureOutput({ writeOut: io.stdout, writeErr: io.stderr });
  register(program, io);
  // exitOverride is per command: make every subcommand throw instead of exiting.
  const override = (c: Command) => {
    c.exitOverride();
    c.commands.forEach(override);
  };
  override(program);
  let error: CommanderError | undefined;
  try {
    await program.parseAsync(args, { from: 'user' });
  } catch (e) {
    if (!(e instanceof CommanderError)) throw e;
    error = e;
  }
  return { stdout: out.join(''), stderr: err.join(''), ...(error ? { error } : {}) };
}
