/**
 * Host manifests. Two formats, both YAML (or JSON):
 *
 * 1. waSCC's, accepted as-is: `labels`, `actors` (paths), `capabilities` (paths of native
 *    providers, which wasmlet cannot load: it serves each contract the bindings name with a
 *    built-in provider), `bindings` (`actor`, `capability`, optional `binding`, `values`).
 * 2. wasmlet's (`apiVersion: wasmlet/v1`, `kind: Host`): host options, per-actor limits and
 *    config, provider choice and options, links. See docs/manifest.md.
 *
 * Both parse into one `HostPlan`; paths are resolved against the manifest's folder.
 */
import { readRegularFile } from './fs-util.ts';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { canonicalContract, normalizeLinkName } from './contracts.ts';
import { ManifestError } from './errors.ts';
import { describeIssues, hostOptionsSchema, instanceIdSchema } from './options.ts';

export interface PlannedActor {
  path: string;
  /** Instance id (default: the module key); lets one module run as several instances. */
  instance?: string;
  maxInstances?: number;
  maxConcurrency?: number;
  maxMemoryMiB?: number;
  deadlineMs?: number;
  config: Record<string, string>;
}

export interface PlannedProvider {
  /** Canonical contract id. */
  contract: string;
  linkName: string;
  /** Provider-specific options (e.g. HTTP limits, key-value backend defaults). */
  options: Record<string, unknown>;
  /** A native provider named by a waSCC manifest (not loadable; reported in logs). */
  nativePath?: string;
}

export interface PlannedLink {
  /** Module key (`M…`), an actor's claims name, or an instance id. */
  actor: string;
  contract: string;
  linkName: string;
  values: Record<string, string>;
}

export interface HostPlan {
  format: 'wascc' | 'wasmlet';
  host: Record<string, unknown>;
  labels: Record<string, string>;
  actors: PlannedActor[];
  providers: PlannedProvider[];
  links: PlannedLink[];
}

const stringMap = z.record(z.string(), z.union([z.string(), z.number(), z.boolean()]).transform(String));

const wasccSchema = z.object({
  labels: z.record(z.string(), z.string()).default({}),
  actors: z.array(z.string().min(1)).default([]),
  capabilities: z
    .array(z.union([z.string().min(1).transform((path) => ({ path, binding_name: undefined as string | undefined })), z.object({ path: z.string().min(1), binding_name: z.string().optional() })]))
    .default([]),
  bindings: z
    .array(
      z.object({
        actor: z.string().min(1),
        capability: z.string().min(1),
        binding: z.string().optional(),
        values: stringMap.optional(),
      }),
    )
    .default([]),
});

const wasmletSchema = z.strictObject({
  apiVersion: z.literal('wasmlet/v1'),
  kind: z.literal('Host'),
  host: hostOptionsSchema.partial().default({}),
  actors: z
    .array(
      z.strictObject({
        path: z.string().min(1),
        instance: instanceIdSchema.optional(),
        maxInstances: z.number().int().min(1).optional(),
        /** Calls of this actor that run at once (its share of the workers). */
        maxConcurrency: z.number().int().min(1).max(1024).optional(),
        /** Linear memory of one instance, MiB. */
        maxMemoryMiB: z.number().int().min(1).max(4096).optional(),
        deadlineMs: z.number().int().min(1).optional(),
        config: stringMap.default({}),
      }),
    )
    .default([]),
  providers: z
    .array(
      z.strictObject({
        contract: z.string().min(1),
        linkName: z.string().optional(),
        options: z.record(z.string(), z.unknown()).default({}),
      }),
    )
    .default([]),
  links: z
    .array(
      z.strictObject({
        actor: z.string().min(1),
        contract: z.string().min(1),
        linkName: z.string().optional(),
        values: stringMap.default({}),
      }),
    )
    .default([]),
});

/** Parses manifest text. `baseDir` resolves relative paths. Throws ManifestError naming the problem. */
export function parseManifest(text: string, baseDir: string): HostPlan {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new ManifestError(`manifest is not valid YAML: ${(err as Error).message}`, { cause: err });
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new ManifestError('manifest must be a mapping (actors, bindings, …)');
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));

  if ('apiVersion' in doc || 'kind' in doc) {
    const r = wasmletSchema.safeParse(doc);
    if (!r.success) throw new ManifestError(`invalid wasmlet manifest: ${describeIssues(r.error)}`, { cause: r.error });
    const m = r.data;
    const providers = m.providers.map((p) => ({ contract: canonicalContract(p.contract), linkName: normalizeLinkName(p.linkName), options: p.options }));
    const links = m.links.map((l) => ({ actor: l.actor, contract: canonicalContract(l.contract), linkName: normalizeLinkName(l.linkName), values: l.values }));
    return {
      format: 'wasmlet',
      host: m.host,
      labels: m.host.labels ?? {},
      actors: m.actors.map(({ path, config, ...limits }) => ({ path: abs(path), config, ...definedOnly(limits) })),
      providers: withImpliedProviders(providers, links),
      links,
    };
  }

  const r = wasccSchema.safeParse(doc);
  if (!r.success) throw new ManifestError(`invalid waSCC manifest: ${describeIssues(r.error)}`, { cause: r.error });
  const m = r.data;
  const links = m.bindings.map((b) => ({ actor: b.actor, contract: canonicalContract(b.capability), linkName: normalizeLinkName(b.binding), values: b.values ?? {} }));
  const providers = withImpliedProviders([], links);
  // Native providers named by the manifest are matched to the contracts the bindings use, in order, for the log line.
  const natives = m.capabilities.map((c) => abs(c.path));
  providers.forEach((p, i) => {
    if (natives[i]) p.nativePath = natives[i];
  });
  return { format: 'wascc', host: { labels: m.labels }, labels: m.labels, actors: m.actors.map((p) => ({ path: abs(p), config: {} })), providers, links };
}

/** The fields of `o` that are set. */
function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Every (contract, link name) a link uses gets a provider unless one is declared. */
function withImpliedProviders(declared: PlannedProvider[], links: PlannedLink[]): PlannedProvider[] {
  const out = [...declared];
  const have = new Set(out.map((p) => `${p.contract}|${p.linkName}`));
  for (const l of links) {
    const key = `${l.contract}|${l.linkName}`;
    if (!have.has(key)) {
      have.add(key);
      out.push({ contract: l.contract, linkName: l.linkName, options: {} });
    }
  }
  return out;
}

/** A manifest larger than this (1 MiB) is refused before it is parsed. */
const MAX_MANIFEST_BYTES = 1024 * 1024;

export async function loadManifest(path: string): Promise<HostPlan> {
  let text: string;
  try {
    text = new TextDecoder().decode(await readRegularFile(path, { maxBytes: MAX_MANIFEST_BYTES, what: 'manifest' }));
  } catch (err) {
    throw new ManifestError((err as Error).message, { cause: err });
  }
  return parseManifest(text, dirname(resolve(path)));
}
