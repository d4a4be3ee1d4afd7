/**
 * `wasmlet push FILE.wasm REF`: publishes a wasm module to an OCI registry.
 * Output goes through the injected `io`; failures go through commander's `command.error`, so the
 * CLI entry decides how to exit and tests can use `exitOverride()`. Passwords are read from stdin
 * only (never from an argument, which other users of the machine could see in the process list).
 */
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Command } from 'commander';
import { credentialsFromDockerConfigJson, type RegistryCredentials } from './credentials.ts';
import { isRegistryError } from '../errors.ts';
import { pushWasm, type PushWasmOptions } from './pusher.ts';
import { parseImageReference } from './reference.ts';

export interface PushCommandIo {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  /** All of standard input (for `--password-stdin`). Default: reads `process.stdin`. */
  readStdin?: () => Promise<string>;
}

interface PushFlags {
  insecure?: boolean;
  username?: string;
  passwordStdin?: boolean;
  authFile?: string;
  annotation?: string[];
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

async function readProcessStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function errorText(err: unknown): string {
  if (isRegistryError(err)) return `${err.message} [${err.code}]`;
  return err instanceof Error ? err.message : String(err);
}

/** Adds `push` to `program`. */
export function registerPushCommand(program: Command, io: PushCommandIo): void {
  program
    .command('push')
    .description('push a wasm module to an OCI registry as a wasm artifact (layer application/vnd.wasm.content.layer.v1+wasm)')
    .argument('<file>', 'the .wasm module or component')
    .argument('<ref>', 'where to push it, e.g. 127.0.0.1:5000/hello:v1 or registry.example.com/team/app:1.0')
    .option('--insecure', 'allow plain HTTP to this registry (loopback registries always may)')
    .option('--username <user>', 'user name for the registry (with --password-stdin)')
    .option('--password-stdin', 'read the password (or token) for --username from standard input')
    .option('--auth-file <file>', 'a docker config.json / .dockerconfigjson with credentials')
    .option('--annotation <key=value>', 'a manifest annotation (repeatable)', collect)
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .action(async (file: string, ref: string, flags: PushFlags, cmd: Command) => {
      const fail = (message: string, code: string): never => cmd.error(`error: ${message}`, { exitCode: 1, code });
      let image;
      try {
        image = parseImageReference(ref);
      } catch (err) {
        return fail(errorText(err), 'push.reference');
      }
      if (flags.passwordStdin && flags.username === undefined) fail('--password-stdin needs --username', 'push.credentials');
      if (flags.username !== undefined && !flags.passwordStdin) fail('--username needs --password-stdin (passwords are never taken as arguments)', 'push.credentials');

      const annotations: Record<string, string> = {};
      for (const a of flags.annotation ?? []) {
        const eq = a.indexOf('=');
        if (eq <= 0) fail(`--annotation ${JSON.stringify(a)}: expected key=value`, 'push.annotation');
        annotations[a.slice(0, eq)] = a.slice(eq + 1);
      }

      const credentials: RegistryCredentials[] = [];
      try {
        if (flags.authFile !== undefined) credentials.push(...credentialsFromDockerConfigJson(await readFile(flags.authFile, 'utf8')));
      } catch (err) {
        fail(`--auth-file ${flags.authFile}: ${errorText(err)}`, 'push.credentials');
      }
      if (flags.username !== undefined) {
        const password = (await (io.readStdin ?? readProcessStdin)()).replace(/\r?\n$/, '');
        if (!password) fail('--password-stdin: standard input was empty', 'push.credentials');
        // Listed first and exact, so it wins over any --auth-file entry for this registry.
        credentials.unshift({ registry: image.registry, username: flags.username, password });
      }

      let bytes: Uint8Array;
      try {
        bytes = new Uint8Array(await readFile(file));
      } catch (err) {
        return fail(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? errorText(err)}`, 'push.read');
      }
      const options: PushWasmOptions = { credentials, annotations, title: basename(file) };
      if (flags.insecure) options.insecureRegistries = [image.registry];
      try {
        const pushed = await pushWasm(bytes, ref, options);
        io.stdout(
          [
            `pushed ${pushed.reference}`,
            `  manifest: ${pushed.manifestDigest}`,
            `  layer:    ${pushed.layerDigest} (${bytes.byteLength} bytes)`,
            `  image id: ${pushed.imageID}`,
          ].join('\n') + '\n',
        );
      } catch (err) {
        fail(`cannot push ${file} to ${ref}: ${errorText(err)}`, isRegistryError(err) ? `push.${err.code}` : 'push.failed');
      }
    });
}
