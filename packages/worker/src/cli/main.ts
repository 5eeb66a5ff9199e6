import { CeleriacError } from '@celeriac/core';
import { UsageError } from '../usage-error.js';
import type { Command, Out } from './args.js';
import { beatCommand } from './beat-command.js';
import { lazyCommand } from './lazy-command.js';
import { OPERATE_COMMANDS } from './operate.js';
import { workerCommand } from './worker-command.js';

export { loadApp } from '../app-loader.js';

/** The commands, in the order the help lists them. A new command is one file and one line here. */
const COMMANDS: Record<string, Command> = {
  worker: workerCommand,
  beat: beatCommand,
  ...OPERATE_COMMANDS,
  dashboard: lazyCommand('dashboard', '@celeriac/dashboard', 'dashboardCommand', 'serve the web dashboard, its JSON API and /metrics (@celeriac/dashboard)'),
};

const MAIN_HELP = `celeriac — typed distributed task queue

Usage: celeriac <command> [options]

Commands:
${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${name.padEnd(9)} ${c.summary}`)
  .join('\n')}

Run \`celeriac <command> --help\` for a command's options.`;

/** Runs the command; resolves with the process exit code (2 for a usage error, printed as one `celeriac: …` line). */
export async function main(argv: string[], out: Out = (s) => process.stdout.write(s + '\n')): Promise<number> {
  const [name, ...rest] = argv;
  try {
    if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
      out(MAIN_HELP);
      return name === undefined ? 1 : 0;
    }
    const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
    if (!command) throw new UsageError(`unknown command "${name}"\n\n${MAIN_HELP}`);
    return await command.run(rest, out);
  } catch (err) {
    if (err instanceof UsageError || err instanceof CeleriacError) {
      process.stderr.write(`celeriac: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}
