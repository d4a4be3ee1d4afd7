/**
 * Host options, with their defaults, and the one function that validates them.
 */
import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { OptionsError } from './errors.ts';

const accountKey = z.string().regex(/^A[A-Z2-7]{55}$/, 'an account public key (A…, 56 characters)');

export const hostOptionsSchema = z.object({
  /** Host id (a server nkey public key, N…). Default: a fresh key per start. */
  hostId: z.string().min(1).optional(),
  /** Lattice id: namespaces bus subjects. Default `default`. */
  lattice: z.string().regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, "-" and "_"').default('default'),
  /**
   * Worker threads that run actors. Default: the machine's parallelism, at least 2 (one stuck
   * worker never stops the host). Measured on 2 cores: 4 workers helped only under outside load
   * and cost echo ~4% when idle. 0: a host for providers only.
   */
  workers: z.number().int().min(0).max(256).default(Math.max(2, availableParallelism())),
  /** Instances per actor unless the actor says otherwise. Default: one per worker. */
  maxInstances: z.number().int().min(1).max(1024).optional(),
  /** Deadline of one invocation (ms). Default 3000. */
  deadlineMs: z.number().int().min(1).max(3_600_000).default(3000),
  /** How long stopping an actor waits for its in-flight calls (ms). Default 5000. */
  drainMs: z.number().int().min(0).max(600_000).default(5000),
  /** Accept only actors signed by these accounts. Empty (default): any valid signature. */
  issuers: z.array(accountKey).default([]),
  /** Host labels (reported in inventory). */
  labels: z.record(z.string(), z.string()).default({}),
});

export type HostOptionsInput = z.input<typeof hostOptionsSchema>;
export type HostOptions = z.output<typeof hostOptionsSchema>;

/** One line naming each problem zod found, e.g. `workers: Too small: expected number to be >=1`. */
export function describeIssues(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
}

/** Parses `input` with `schema`, throwing OptionsError(`invalid <what>: …`). */
export function parseWith<S extends z.ZodType>(schema: S, what: string, input: unknown): z.output<S> {
  const r = schema.safeParse(input ?? {});
  if (!r.success) throw new OptionsError(`invalid ${what}: ${describeIssues(r.error)}`, { cause: r.error });
  return r.data;
}

export function parseHostOptions(input: unknown): HostOptions {
  return parseWith(hostOptionsSchema, 'host options', input);
}

/**
 * An instance id: a running copy of an actor with its own identity (links, config, logs,
 * status), e.g. `default/web-7d9f/app` for a pod's container. Letters, digits and `. _ - /`.
 * The actor's signer-verified identity stays its module key.
 */
export const instanceIdSchema = z
  .string()
  .min(1)
  .max(512)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._/-]*$/, 'an instance id: letters, digits and ". _ - /", starting with a letter or digit');

/** Per-actor options given when starting it. */
export const actorStartOptionsSchema = z.object({
  /** The instance's id. Default: the module key (one instance per actor, as waSCC had). */
  instance: instanceIdSchema.optional(),
  maxInstances: z.number().int().min(1).max(1024).optional(),
  deadlineMs: z.number().int().min(1).max(3_600_000).optional(),
  /** Configuration values the actor can read (components). */
  config: z.record(z.string(), z.string()).default({}),
});
export type ActorStartOptionsInput = z.input<typeof actorStartOptionsSchema>;
export type ActorStartOptions = z.output<typeof actorStartOptionsSchema>;

export function parseActorStartOptions(input: unknown): ActorStartOptions {
  return parseWith(actorStartOptionsSchema, 'actor options', input);
}
