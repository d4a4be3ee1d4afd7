/**
 * Logging, two ways:
 * - `log.info(message, context)` etc. go through the logging capability (`wasmlet:logging`,
 *   claimed and linked like any capability); the context travels as key=value pairs.
 * - `console.log` and friends write the actor's own console lines (no link needed).
 */
/// <reference path="./world.d.ts" />
import * as rawConsole from 'wasmlet:actor/console@0.1.0';
import * as raw from 'wasmlet:actor/logging@0.1.0';
import type { Level } from 'wasmlet:actor/types@0.1.0';
import { attempt, type Result } from './result.ts';

export type LogLevel = Level;
export type LogContext = Record<string, unknown>;

export interface Logger {
  trace(message: string, context?: LogContext): Result<void>;
  debug(message: string, context?: LogContext): Result<void>;
  info(message: string, context?: LogContext): Result<void>;
  warn(message: string, context?: LogContext): Result<void>;
  error(message: string, context?: LogContext): Result<void>;
  write(level: LogLevel, message: string, context?: LogContext): Result<void>;
}

/** Renders one value for a log line: strings as they are, everything else as JSON. */
export function renderValue(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value instanceof Error) return `${value.name}: ${value.message}`;
  if (typeof value === 'bigint') return value.toString();
  try {
    const s = JSON.stringify(value);
    return s === undefined ? String(value) : s;
  } catch {
    return String(value);
  }
}

function bind(link: string): Logger {
  const write = (level: LogLevel, message: string, context: LogContext = {}) =>
    attempt(() => raw.writeLog(link, level, message, Object.entries(context).map(([k, v]): [string, string] => [k, renderValue(v)])));
  return {
    write,
    trace: (m, c) => write('trace', m, c),
    debug: (m, c) => write('debug', m, c),
    info: (m, c) => write('info', m, c),
    warn: (m, c) => write('warn', m, c),
    error: (m, c) => write('error', m, c),
  };
}

/** The logging capability on the default link; `.link(name)` for a named link. */
export const log: Logger & { link(name: string): Logger } = Object.assign(bind(''), { link: (name: string) => bind(name) });

/** Routes the JS `console` to the actor's console lines (the engine's own stdio is off). */
export function installConsole(): void {
  const line = (level: LogLevel) => (...args: unknown[]) => {
    try {
      rawConsole.write(level, args.map(renderValue).join(' '));
    } catch {
      // Never let logging crash a handler.
    }
  };
  const c = globalThis.console as unknown as Record<string, unknown>;
  const replacement: Record<LogLevel | 'log', (...args: unknown[]) => void> = {
    log: line('info'),
    info: line('info'),
    debug: line('debug'),
    trace: line('trace'),
    warn: line('warn'),
    error: line('error'),
  };
  for (const [name, fn] of Object.entries(replacement)) {
    try {
      c[name] = fn;
    } catch {
      // A frozen console keeps the engine's own.
    }
  }
}
