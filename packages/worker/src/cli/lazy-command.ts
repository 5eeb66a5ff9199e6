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
        // Only the package itself missing is this usage error: a dependency of it that is missing
        // (prom-client, zod) is reported as itself.
        const message = String((err as Error).message);
        if (message.includes(`Cannot find package '${specifier}'`) || message.includes(`Cannot find module '${specifier}'`)) {
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
