/**
 * Host options, with their defaults, and the one function that validates them.
 */
import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { OptionsError } from './errors.ts';

/** See `maxMemoryMiB`. */
export const DEFAULT_MAX_MEMORY_MIB = 64;

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
  /**
   * Fair share: the most calls of one actor that run at once (each holds a worker thread while it
   * runs), unless the actor says otherwise. Default: one less than `workers` (at least 1), so no
   * actor can occupy every worker; its other calls wait in its own queue. Setting it to `workers`
   * or more lets one actor starve the others, and the host warns.
   */
  maxConcurrency: z.number().int().min(1).max(1024).optional(),
  /**
   * Linear memory one actor instance may have (MiB), unless the actor says otherwise: every
   * memory its modules define gets this maximum, and a `memory.grow` past it fails (returns -1).
   * Default 64: a TypeScript component starts at about 9 MiB, a waSCC actor at about 1 MiB.
   * Together with `maxInstances` it bounds what actors can take: limit × instances × actors.
   */
  maxMemoryMiB: z.number().int().min(1).max(4096).default(DEFAULT_MAX_MEMORY_MIB),
  /**
   * Largest payload an actor may send in one host call, and reply it may get back (bytes).
   * Checked in the actor's worker before the payload is copied out of its memory; past it the
   * actor gets an error value. Default 2 MiB (a 1 MiB HTTP body and what goes with it).
   */
  maxHostCallBytes: z.number().int().min(1024).max(2 ** 30).default(2 * 1024 * 1024),
  /**
   * Largest response an actor may answer a call with (bytes). Checked in its worker; past it the
   * call fails with PAYLOAD_TOO_LARGE (HTTP 502) and nothing is copied. Default 8 MiB.
   */
  maxResponseBytes: z.number().int().min(1024).max(2 ** 30).default(8 * 1024 * 1024),
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
  /** Calls of this actor that run at once (see the host option). */
  maxConcurrency: z.number().int().min(1).max(1024).optional(),
  /** Linear memory of one instance of this actor, MiB (see the host option). */
  maxMemoryMiB: z.number().int().min(1).max(4096).optional(),
  deadlineMs: z.number().int().min(1).max(3_600_000).optional(),
  /** Configuration values the actor can read (components). */
  config: z.record(z.string(), z.string()).default({}),
});
export type ActorStartOptionsInput = z.input<typeof actorStartOptionsSchema>;
export type ActorStartOptions = z.output<typeof actorStartOptionsSchema>;

export function parseActorStartOptions(input: unknown): ActorStartOptions {
  return parseWith(actorStartOptionsSchema, 'actor options', input);
}
