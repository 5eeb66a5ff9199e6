import { UsageError } from '../usage-error.js';
import type { Command } from './args.js';

/**
 * A command that lives in another package, imported only when it runs: `celeriac dashboard` is
 * in @celeriac/dashboard, which workers and producers never need to install. The specifier is a
 * value, not a literal, so this package has no build-time dependency on the other one.
 */
export function lazyCommand(name: string, specifier: string, exportName: string, summary: string): Command {
  return {
    summary,
    async run(argv, out) {
      let mod: Record<string, unknown>;
      try {
        mod = (await import(specifier)) as Record<string, unknown>;
      } catch (err) {
        const code = (err as { code?: string }).code;
        if ((code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') && String((err as Error).message).includes(specifier)) {
          throw new UsageError(`celeriac ${name} needs ${specifier}: npm install ${specifier}`);
        }
        throw err;
      }
      const command = mod[exportName] as Partial<Command> | undefined;
      if (typeof command?.run !== 'function') throw new UsageError(`${specifier} has no ${exportName}: install the version of ${specifier} that matches @celeriac/worker`);
      return command.run(argv, out);
    },
  };
}
