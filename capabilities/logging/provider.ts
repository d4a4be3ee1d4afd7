/**
 * The logging capability provider (`wasmlet:logging`, alias `wascc:logging`).
 *
 * waSCC's contract (wascc-codec `logging` module): operation `WriteLog` with
 * `{level: usize, body: String}`, where `level` is Rust's `log::Level` as a number:
 * 1 error, 2 warn, 3 info, 4 debug, 5 trace. wascc-actor's logger sends it and discards the reply;
 * waSCC's own provider answered with zero bytes. We answer with an encoded empty map instead: a
 * waSCC guest ignores it either way, and a typed caller that decodes the reply gets a value.
 * An unknown level is not an error in waSCC (its provider logged it anyway); we keep the line at
 * `info` and record the number, so nothing is lost.
 */
import { decode, encode, LOGGING } from '../../host/index.ts';
import type { CapabilityProvider, LinkDefinition, Logger, LogRecord, ProviderCall, ProviderContext } from '../../host/index.ts';
import { OperationError } from '../errors.ts';

export const OP_WRITE_LOG = 'WriteLog';

/** waSCC level numbers (Rust `log::Level as usize`) to log levels. */
const LEVELS: readonly (LogRecord['level'] | undefined)[] = [undefined, 'error', 'warn', 'info', 'debug', 'trace'];

/** The waSCC level number for a level name (what a guest sends). */
export const WASCC_LOG_LEVELS = { error: 1, warn: 2, info: 3, debug: 4, trace: 5 } as const;

const EMPTY_REPLY = encode({});

interface WriteLogRequest {
  level: number;
  body: string;
}

export class LoggingProvider implements CapabilityProvider {
  readonly contract = LOGGING;
  readonly name = 'logging';
  private ctx: ProviderContext | undefined;
  /** One child logger per actor, made on first use. */
  private readonly loggers = new Map<string, Logger>();

  async start(ctx: ProviderContext): Promise<void> {
    this.ctx = ctx;
  }

  /** Logging needs no per-actor configuration; a link only allows the calls. */
  async putLink(_link: LinkDefinition): Promise<void> {}

  async deleteLink(link: LinkDefinition): Promise<void> {
    this.loggers.delete(link.actor);
  }

  async handle(call: ProviderCall): Promise<Uint8Array> {
    if (call.operation !== OP_WRITE_LOG) {
      throw new OperationError('UNKNOWN_OPERATION', `logging has no operation "${call.operation}" (expected ${OP_WRITE_LOG})`);
    }
    const ctx = this.ctx;
    if (!ctx) throw new OperationError('BACKEND_ERROR', 'logging provider is not started');
    const req = parseWriteLog(call.msg);
    const level = LEVELS[req.level];
    let logger = this.loggers.get(call.actor);
    if (!logger) {
      logger = ctx.logger.child({ actor: call.actor });
      this.loggers.set(call.actor, logger);
    }
    if (level) logger[level](req.body);
    else logger.info({ wasccLevel: req.level }, req.body);
    ctx.logs.append(call.actor, { time: Date.now(), level: level ?? 'info', stream: 'log', msg: req.body });
    return EMPTY_REPLY;
  }

  async stop(): Promise<void> {
    this.loggers.clear();
    this.ctx = undefined;
  }
}

function parseWriteLog(msg: Uint8Array): WriteLogRequest {
  let value: unknown;
  try {
    value = decode(msg);
  } catch (err) {
    throw new OperationError('BAD_REQUEST', `WriteLog payload is not msgpack: ${(err as Error).message}`, { cause: err });
  }
  const v = value as Partial<WriteLogRequest> | null;
  if (typeof v !== 'object' || v === null) throw new OperationError('BAD_REQUEST', 'WriteLog payload must be a map {level, body}');
  if (typeof v.level !== 'number' || !Number.isInteger(v.level) || v.level < 0) {
    throw new OperationError('BAD_REQUEST', `WriteLog level must be an unsigned integer, got ${JSON.stringify(v.level)}`);
  }
  // Some encoders send the text as `bin`; accept it as UTF-8 rather than drop the line.
  const body: unknown = v.body;
  if (body instanceof Uint8Array) return { level: v.level, body: Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8') };
  if (typeof body !== 'string') throw new OperationError('BAD_REQUEST', 'WriteLog body must be a string');
  return { level: v.level, body };
}
