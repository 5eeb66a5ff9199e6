import { parseArgs, type ParseArgsConfig } from 'node:util';
import { consoleLogger, jsonLogger, type App, type LogLevel, type Logger } from '@celeriac/core';
import { loadApp } from '../app-loader.js';
import { UsageError } from '../usage-error.js';

/**
 * What every command shares: its flags (`--app`, `--broker`, the log flags, `--help`), parsing
 * them, and opening the app. A command adds its own flags to `COMMON_ARGS`.
 */

/** Writes a line of the command's own output (help, tables): stdout. Logs go to stderr. */
export type Out = (line: string) => void;

/** One `celeriac <name>`: a line for the main help, and the function that runs it (resolves with the exit code). */
export interface Command {
  summary: string;
  run(argv: string[], out: Out): Promise<number>;
}

export const COMMON_ARGS = {
  app: { type: 'string' },
  broker: { type: 'string' },
  'log-level': { type: 'string', default: 'info' },
  'log-format': { type: 'string', default: 'pretty' },
  help: { type: 'boolean', short: 'h' },
} satisfies ParseArgsConfig['options'];

/** The help lines of COMMON_ARGS' log flags, for each command's help. */
export const LOG_HELP = `  --log-level <level>     debug | info | warn | error | silent (default info)
  --log-format <format>   pretty (a line a person reads) | json (one JSON object a line, pino's fields) (default pretty)`;

export type LogFormat = 'pretty' | 'json';

type Parsed<O extends ParseArgsConfig['options']> = ReturnType<typeof parseArgs<{ args: string[]; options: O; strict: true; allowPositionals: false }>>;

export function parse<O extends ParseArgsConfig['options']>(args: string[], options: O): Parsed<O> {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** Checks `--app`; undefined when the command printed its help instead. */
export function commandArgs<V extends { help?: boolean | undefined; app?: string | undefined }>(values: V, help: string, out: Out) {
  if (values.help) {
    out(help);
    return undefined;
  }
  if (!values.app) throw new UsageError(`--app is required\n\n${help}`);
  return { ...values, app: values.app };
}

/** Loads the user's app; `--broker` goes into the environment first, where the app reads it. */
export function openApp(values: { app: string; broker?: string | undefined }): Promise<App> {
  if (values.broker) process.env.CELERIAC_BROKER_URL = values.broker;
  return loadApp(values.app);
}

/** The command's logger on stderr, from `--log-level` and `--log-format`. */
export function commandLogger(values: { 'log-level'?: string | undefined; 'log-format'?: string | undefined }): { logger: Logger; format: LogFormat } {
  const level = logLevel(values['log-level']);
  const format = logFormat(values['log-format']);
  return { logger: format === 'json' ? jsonLogger(level) : consoleLogger(level), format };
}

export function logLevel(value: string | undefined): LogLevel {
  if (!['debug', 'info', 'warn', 'error', 'silent'].includes(value ?? '')) throw new UsageError(`--log-level must be debug, info, warn, error or silent (got ${value})`);
  return value as LogLevel;
}

export function logFormat(value: string | undefined): LogFormat {
  if (value !== 'pretty' && value !== 'json') throw new UsageError(`--log-format must be pretty or json (got ${value})`);
  return value;
}

export function int(flag: string, value: string, min = 1): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`${flag} must be an integer ≥ ${min} (got ${value})`);
  return n;
}
