import { hostname } from 'node:os';

/** A pino-compatible logger shape: pass a pino instance as is, or anything with these methods. */
export interface Logger {
  debug(obj: object | string, msg?: string): void;
  info(obj: object | string, msg?: string): void;
  warn(obj: object | string, msg?: string): void;
  error(obj: object | string, msg?: string): void;
  /** A logger whose lines carry `bindings` too (pino has it; `childLogger` works without it). */
  child?(bindings: Record<string, unknown>): Logger;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
type Method = Exclude<LogLevel, 'silent'>;
const METHODS: readonly Method[] = ['debug', 'info', 'warn', 'error'];
/** pino's level numbers, so JSON lines read the same as a pino app's (and pino tools filter them). */
const PINO_LEVEL: Record<LogLevel, number> = { debug: 20, info: 30, warn: 40, error: 50, silent: Infinity };

const noop = () => {};
/** Says nothing: the default, so tests and libraries stay quiet unless asked. */
export const silentLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop };

let stderrGuarded = false;
/**
 * Writes a line to stderr. A reader that went away (a log shipper restarting, `| head`) makes the
 * stream emit EPIPE: the lost line is the only cost, never the process (and the tasks it holds).
 */
const toStderr = (line: string) => {
  if (!stderrGuarded) {
    stderrGuarded = true;
    process.stderr.on('error', () => {});
  }
  process.stderr.write(line + '\n');
};

/** A small line logger for the `celeriac` command and examples: `level message {fields}` on stderr. */
export function consoleLogger(level: LogLevel = 'info', write: (line: string) => void = toStderr): Logger {
  return lineLogger(level, (name, fields, text) => {
    const extra = Object.keys(fields).length > 0 ? ` ${stringify(fields)}` : '';
    write(`${new Date().toISOString()} ${name.padEnd(5)} ${text}${extra}`);
  });
}

/**
 * One JSON object a line, in pino's shape (`{"level":30,"time":…,"pid":…,"hostname":…,…fields,"msg":…}`),
 * for log collectors and `pino-pretty`.
 */
export function jsonLogger(level: LogLevel = 'info', write: (line: string) => void = toStderr): Logger {
  const base = { pid: process.pid, hostname: hostname() };
  return lineLogger(level, (name, fields, msg) => {
    write(stringify({ level: PINO_LEVEL[name], time: Date.now(), ...base, ...fields, msg }));
  });
}

/**
 * Whether `logger` writes lines at `level`: pino's `isLevelEnabled` where it has one; for this
 * module's loggers, whether the method is more than a no-op. Lets callers skip building lines nobody
 * will see (on a per-task path, that is work per task).
 */
export function levelEnabled(logger: Logger, level: Method): boolean {
  const pino = logger as Logger & { isLevelEnabled?: (level: string) => boolean };
  return typeof pino.isLevelEnabled === 'function' ? pino.isLevelEnabled(level) : logger[level] !== noop;
}

/**
 * `logger` with `bindings` on every line: its own `child` where it has one (pino), else a wrapper
 * that merges them into each call's fields (a call's own fields win, as in pino).
 */
export function childLogger(logger: Logger, bindings: Record<string, unknown>): Logger {
  if (typeof logger.child === 'function') return logger.child(bindings);
  const bind = (method: Method) =>
    // A level that is off stays a no-op: no fields are merged for a line nobody sees.
    !levelEnabled(logger, method)
      ? noop
      : (obj: object | string, msg?: string): void => {
          if (typeof obj === 'string') logger[method]({ ...bindings }, obj);
          else if (msg === undefined) logger[method]({ ...bindings, ...obj });
          else logger[method]({ ...bindings, ...obj }, msg);
        };
  return { debug: bind('debug'), info: bind('info'), warn: bind('warn'), error: bind('error') };
}

/** The four methods at or above `level`, each handing (level, fields, message) to `emit`; the rest do nothing. */
function lineLogger(level: LogLevel, emit: (name: Method, fields: Record<string, unknown>, text: string) => void): Logger {
  const at = (name: Method) =>
    PINO_LEVEL[name] < PINO_LEVEL[level]
      ? noop
      : (obj: object | string, msg?: string) => (typeof obj === 'string' ? emit(name, {}, obj) : emit(name, { ...obj }, msg ?? ''));
  return Object.fromEntries(METHODS.map((m) => [m, at(m)])) as unknown as Logger;
}

/** JSON that never throws (a log line must not break the code that logs): errors as pino writes them, bigints as strings. */
function stringify(value: object): string {
  const seen = new WeakSet<object>();
  try {
    return JSON.stringify(value, (_key, v: unknown) => {
      if (v instanceof Error) return { type: v.name, message: v.message, stack: v.stack };
      if (typeof v === 'bigint') return v.toString();
      if (typeof v === 'object' && v !== null) {
        if (seen.has(v)) return '[Circular]';
        seen.add(v);
      }
      return v;
    });
  } catch (err) {
    return JSON.stringify({ logError: `fields not serialisable: ${(err as Error).message}` });
  }
}
