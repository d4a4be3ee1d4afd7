/** Options of the HTTP server provider, and the link values it reads. */
import { isIP } from 'node:net';
import { z } from 'zod';
import { OptionsError } from '../../host/index.ts';
import { LinkError } from '../errors.ts';

export interface HttpServerOptions {
  /** Address to listen on when a link sets no `ADDRESS`. Default `0.0.0.0`. */
  address?: string;
  /** Largest request body accepted; a larger one is answered 413 without being read. Default 1 MiB. */
  maxBodyBytes?: number;
  /** Time allowed to receive a request's headers; then 408 and the connection is closed. Default 10 000 ms. */
  headersTimeoutMs?: number;
  /** Time allowed to receive a whole request (headers and body); at least `headersTimeoutMs`. Default 30 000 ms. */
  requestTimeoutMs?: number;
  /** How long an idle keep-alive connection stays open. Default 5 000 ms. */
  keepAliveTimeoutMs?: number;
  /** Largest request header section in bytes; larger is answered 431. Default 16 KiB (Node's). */
  maxHeaderBytes?: number;
  /**
   * Largest actor response accepted, in bytes; a larger one is answered 502 without being
   * decoded. Default 8 MiB (the host's own cap on actor responses).
   */
  maxResponseBytes?: number;
  /** On `deleteLink`/`stop`, how long in-flight requests may finish before connections are destroyed. Default 5 000 ms. */
  drainTimeoutMs?: number;
  /** Deadline of each `HandleRequest` invocation; unset means the host's default. */
  invocationDeadlineMs?: number;
}

export type ResolvedHttpServerOptions = Required<Omit<HttpServerOptions, 'invocationDeadlineMs'>> &
  Pick<HttpServerOptions, 'invocationDeadlineMs'>;

const ms = (max: number) => z.number().int().min(1).max(max);

const schema = z
  .object({
    address: z.string().min(1).default('0.0.0.0'),
    maxBodyBytes: z.number().int().min(0).max(2 ** 31 - 1).default(1024 * 1024),
    headersTimeoutMs: ms(3_600_000).default(10_000),
    requestTimeoutMs: ms(3_600_000).default(30_000),
    keepAliveTimeoutMs: ms(3_600_000).default(5_000),
    maxHeaderBytes: z.number().int().min(1024).max(1024 * 1024).default(16 * 1024),
    maxResponseBytes: z.number().int().min(1024).max(2 ** 30).default(8 * 1024 * 1024),
    drainTimeoutMs: z.number().int().min(0).max(3_600_000).default(5_000),
    invocationDeadlineMs: ms(3_600_000).optional(),
  })
  .strict()
  .refine((o) => o.headersTimeoutMs <= o.requestTimeoutMs, {
    message: 'headersTimeoutMs must not exceed requestTimeoutMs',
    path: ['headersTimeoutMs'],
  });

/** Validate HttpServerOptions and fill in defaults. Throws OptionsError. */
export function parseHttpServerOptions(input: unknown = {}): ResolvedHttpServerOptions {
  const parsed = schema.safeParse(input ?? {});
  if (!parsed.success) throw new OptionsError(`invalid HTTP server options: ${z.prettifyError(parsed.error)}`, { cause: parsed.error });
  return parsed.data;
}

/** Where an actor's server listens, from a link's values. */
export interface ListenTarget {
  port: number;
  address: string;
}

/** Read `PORT` (required, 1–65535) and `ADDRESS` (optional) from link values. Throws LinkError. */
export function parseListenTarget(values: Record<string, string>, defaultAddress: string): ListenTarget {
  const rawPort = values.PORT;
  if (rawPort === undefined) throw new LinkError('HTTP server link needs a PORT value');
  if (typeof rawPort !== 'string' || !/^[0-9]{1,5}$/.test(rawPort)) {
    throw new LinkError(`HTTP server link PORT must be an integer 1-65535, got ${JSON.stringify(rawPort)}`);
  }
  const port = Number(rawPort);
  if (port < 1 || port > 65535) throw new LinkError(`HTTP server link PORT must be an integer 1-65535, got ${JSON.stringify(rawPort)}`);
  const address = values.ADDRESS ?? defaultAddress;
  // An IP literal or a host name; anything else would only fail later, less clearly.
  if (typeof address !== 'string' || (isIP(address) === 0 && !/^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$/.test(address))) {
    throw new LinkError(`HTTP server link ADDRESS must be an IP address or host name, got ${JSON.stringify(address)}`);
  }
  return { port, address };
}
