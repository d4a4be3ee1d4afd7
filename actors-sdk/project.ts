/**
 * An actor project: a folder with `actor.json` (name, capabilities, entry module, output) next
 * to its TypeScript. One parse function validates it and names every bad field.
 */
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { ActorBuildError } from './errors.ts';

export const PROJECT_FILE = 'actor.json';

/** Contract ids an actor may claim; the waSCC and wasmCloud aliases are accepted as written. */
const contractId = z.string().regex(/^[a-z][a-z0-9_-]*:[a-z][a-z0-9_-]*$/, 'a contract id such as "wasmlet:keyvalue"');

const actorNamePattern = /^[a-z0-9][a-z0-9-]*$/;

const projectSchema = z.strictObject({
  /** The actor's name (claims `name`, output file name); lower-case letters, digits and "-". */
  name: z.string().regex(actorNamePattern, 'lower-case letters, digits and "-", starting with a letter or digit').max(64),
  /** Version text (claims `ver`). Default "0.1.0". */
  version: z.string().trim().min(1).default('0.1.0'),
  /** Revision number (claims `rev`). Default 0. */
  revision: z.number().int().nonnegative().default(0),
  /** Capability contracts the actor may call (claims `caps`), e.g. ["wasmlet:httpserver", "wasmlet:keyvalue"]. */
  capabilities: z.array(contractId).default([]),
  /** Claims tags. Default none. */
  tags: z.array(z.string().trim().min(1)).default([]),
  /** The module whose default export is the HTTP handler. Default `src/actor.ts`. */
  entry: z.string().min(1).default('src/actor.ts'),
  /** Where the signed component goes. Default `build/<name>.wasm`. */
  output: z.string().min(1).optional(),
  /** Type-check with the project's tsconfig.json before bundling. Default true. */
  typecheck: z.boolean().default(true),
});

export type ActorProjectConfig = z.output<typeof projectSchema> & { output: string };
export type ActorProjectConfigInput = z.input<typeof projectSchema>;

export interface ActorProject {
  /** Absolute path of the project folder. */
  dir: string;
  config: ActorProjectConfig;
  /** Absolute paths. */
  entryPath: string;
  outputPath: string;
}

function describe(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`).join('; ');
}

export function isActorName(name: string): boolean {
  return actorNamePattern.test(name) && name.length <= 64;
}

/** Validates an actor.json document. Throws ActorBuildError(PROJECT_INVALID) naming every bad field. */
export function parseProjectConfig(input: unknown, source = PROJECT_FILE): ActorProjectConfig {
  const r = projectSchema.safeParse(input);
  if (!r.success) throw new ActorBuildError('PROJECT_INVALID', `invalid ${source}: ${describe(r.error)}`, { cause: r.error });
  return { ...r.data, output: r.data.output ?? `build/${r.data.name}.wasm` };
}

/** Reads and validates `<dir>/actor.json`. */
export async function loadProject(dir: string): Promise<ActorProject> {
  const abs = resolve(dir);
  const file = join(abs, PROJECT_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? `no ${PROJECT_FILE} in ${abs} (is this an actor project? \`wasmlet actor new NAME\` makes one)` : `cannot read ${file}: ${(err as Error).message}`;
    throw new ActorBuildError('PROJECT_INVALID', why, { cause: err });
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new ActorBuildError('PROJECT_INVALID', `${file} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  const config = parseProjectConfig(doc, file);
  return { dir: abs, config, entryPath: resolve(abs, config.entry), outputPath: resolve(abs, config.output) };
}
