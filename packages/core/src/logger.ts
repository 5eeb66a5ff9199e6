/** A pino-compatible logger shape: pass a pino instance as is, or anything with these methods. */
export interface Logger {
  debug(obj: object | string, msg?: string): void;
  info(obj: object | string, msg?: string): void;
  warn(obj: object | string, msg?: string): void;
  error(obj: object | string, msg?: string): void;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 99 };

const noop = () => {};
/** Says nothing: the default, so tests and libraries stay quiet unless asked. */
export const silentLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop };

/** A small line logger for the `celeriac` command and examples: `level message {fields}` on stderr. */
export function consoleLogger(level: LogLevel = 'info', write: (line: string) => void = (l) => process.stderr.write(l + '\n')): Logger {
  const at = (name: Exclude<LogLevel, 'silent'>) =>
    RANK[name] < RANK[level]
      ? noop
      : (obj: object | string, msg?: string) => {
          const [fields, text] = typeof obj === 'string' ? [undefined, obj] : [obj, msg ?? ''];
          const extra = fields && Object.keys(fields).length > 0 ? ` ${JSON.stringify(fields)}` : '';
          write(`${new Date().toISOString()} ${name.padEnd(5)} ${text}${extra}`);
        };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}
