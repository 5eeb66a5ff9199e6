import { createInterface } from 'node:readline/promises';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { CeleriacError, ControlUnavailableError, createApp, redactUrl, withTimeout, type App } from '@celeriac/core';
import { UsageError } from '../usage-error.js';
import { openApp as openUserApp, type Command as CliCommand, type Out } from './args.js';
import { duration, formatFields, formatTable, json, when } from './table.js';

/** How long a command may take, connecting included, before it says the broker is unreachable. */
export const OPERATE_TIMEOUT_MS = 15_000;

/** What a command needs of its surroundings (the process, or a test). */
export interface OperateIo {
  out(text: string): void;
  err(text: string): void;
  /** Asks a yes/no question on a terminal; undefined when there is no terminal to ask on. */
  confirm?: (question: string) => Promise<boolean>;
}

/** A command's outcome: 0 done, 1 not found or refused (the message says why). */
type Run = (app: App, positionals: string[], values: Values, io: OperateIo) => Promise<number>;

const COMMON = `Connection (one of):
  --broker <url>          broker URL (default: $CELERIAC_BROKER_URL)
  --results <url>         result store URL when apart from the broker, e.g. redis:// beside amqp:// (default: $CELERIAC_RESULTS_URL)
  --app <path>            or: the module exporting your \`app\` (uses its broker and store)
  --json                  print JSON (for scripts) instead of a table
  -h, --help              show this help

Exit codes: 0 done, 1 not found or refused, 2 usage error or broker unreachable.`;

const ARGS = {
  broker: { type: 'string' },
  results: { type: 'string' },
  app: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  queue: { type: 'string' },
  limit: { type: 'string' },
  terminate: { type: 'boolean' },
  id: { type: 'string', multiple: true },
  yes: { type: 'boolean' },
} satisfies ParseArgsConfig['options'];
type Values = ReturnType<typeof parseArgs<{ options: typeof ARGS; allowPositionals: true }>>['values'];

interface Command {
  usage: string;
  /** Flags this command takes besides the connection ones. */
  flags: readonly (keyof typeof ARGS)[];
  positionals: number;
  run: Run;
  /** A destructive command: the question asked on a terminal without --yes (before any work or time limit). */
  confirm?: (positionals: string[], values: Values) => string;
  /** Its time limit, when longer than `OPERATE_TIMEOUT_MS` (work proportional to a queue's size). */
  timeoutMs?: number;
}

/** The time limit of commands whose work grows with a queue (purge, redrive, discard). */
export const BULK_TIMEOUT_MS = 120_000;

const INSPECT: Record<string, Command> = {
  queues: {
    usage: 'celeriac inspect queues\n\nEvery queue in use (published to or served), with its counts and whether it is paused.',
    flags: [],
    positionals: 0,
    run: async (app, _, values, io) => {
      const queues = await app.inspect.queues();
      if (values.json) return print(io, json(queues));
      const rows = queues.map((q) => [q.queue, String(q.ready), String(q.delayed), String(q.inFlight), String(q.dead), String(q.completed), String(q.failed), q.paused ? 'paused' : '']);
      return print(io, formatTable(['QUEUE', 'READY', 'DELAYED', 'IN FLIGHT', 'DEAD', 'COMPLETED', 'FAILED', 'PAUSED'], rows));
    },
  },
  workers: {
    usage: 'celeriac inspect workers\n\nThe workers alive now (a killed one drops out within three heartbeats).',
    flags: [],
    positionals: 0,
    run: async (app, _, values, io) => {
      const workers = await app.inspect.workers();
      if (values.json) return print(io, json(workers));
      const now = Date.now();
      const rows = workers.map((w) => [w.id, w.host, String(w.pid), w.queues.join(','), `${w.active.length}/${w.concurrency}`, String(w.processed), String(w.failed), duration(now - w.startedAt), `${duration(now - w.lastSeen)} ago`]);
      return print(io, formatTable(['ID', 'HOST', 'PID', 'QUEUES', 'ACTIVE', 'PROCESSED', 'FAILED', 'UP', 'LAST SEEN'], rows));
    },
  },
  task: {
    usage: 'celeriac inspect task <id> [--queue <queue>]\n\nOne task: state, outcome, progress, the worker running it. Looks in every known queue unless --queue is given.',
    flags: ['queue'],
    positionals: 1,
    run: async (app, [id], values, io) => {
      const task = await app.inspect.task(id!, values.queue === undefined ? {} : { queue: values.queue });
      if (!task) return refuse(io, `task ${id} not found in ${values.queue ?? 'any known queue'} (never enqueued there, or its result expired)`);
      if (values.json) return print(io, json(task));
      const fields: [string, string][] = [
        ['id', task.id],
        ['task', task.task ?? '-'],
        ['queue', task.queue],
        ['state', task.state],
        ['attempt', task.attempt === null ? '-' : String(task.attempt)],
        ['worker', task.worker ?? '-'],
        ['started', when(task.startedAt)],
        ['finished', when(task.finishedAt)],
        ['progress', task.progress === null ? '-' : JSON.stringify(task.progress)],
        ['revoked', task.revoked ? `${when(task.revoked.at)}${task.revoked.terminate ? ' (terminate)' : ''}` : '-'],
      ];
      if ('result' in task) fields.push(['result', JSON.stringify(task.result)]);
      if (task.error) fields.push(['error', `${task.error.name}: ${task.error.message}`]);
      return print(io, formatFields(fields));
    },
  },
  dead: {
    usage:
      'celeriac inspect dead <queue> [--limit <n>]\n\nDead letters of a queue (default 100), each with the id that redrive and discard take.\nA listing stops at 4 MiB of letters (big letters: fewer than --limit); the table then says how many there are.',
    flags: ['limit'],
    positionals: 1,
    run: async (app, [queue], values, io) => {
      const limit = values.limit === undefined ? 100 : positiveInt('--limit', values.limit);
      const dead = await app.inspect.deadLetters(queue!, { limit });
      if (values.json) return print(io, json(dead));
      // Fewer than asked: all there are, or a listing cut at its byte budget (say which).
      const total = dead.length < limit ? (await (await app.connection()).broker.stats(queue!)).dead : dead.length;
      if (total > dead.length) io.err(`showing ${dead.length} of ${total} dead letters: a listing stops at 4 MiB of letters (redrive without --id takes them all)`);
      return print(io, formatTable(['ID', 'AT', 'REASON'], dead.map((d) => [d.id, when(d.at), d.reason])));
    },
  },
  schedules: {
    usage: 'celeriac inspect schedules\n\nThe periodic tasks schedulers declared, with their last and next runs.',
    flags: [],
    positionals: 0,
    run: async (app, _, values, io) => {
      const schedules = await app.inspect.schedules();
      if (values.json) return print(io, json(schedules));
      const rows = schedules.map((s) => [s.name, s.task, s.queue, s.expression, s.tz, when(s.lastRun), when(s.nextRun)]);
      return print(io, formatTable(['NAME', 'TASK', 'QUEUE', 'EXPRESSION', 'TZ', 'LAST RUN', 'NEXT RUN'], rows));
    },
  },
};

const CONTROL: Record<string, Command> = {
  revoke: {
    usage: 'celeriac revoke <id> [--terminate] [--queue <queue>]\n\nRevokes a task: not run if it has not started; with --terminate, aborted if it has.\nWith --queue, a task already finished there is reported instead.',
    flags: ['terminate', 'queue'],
    positionals: 1,
    run: async (app, [id], values, io) => {
      const result = await app.control.revoke(id!, { terminate: values.terminate ?? false, ...(values.queue === undefined ? {} : { queue: values.queue }) });
      if (values.json) return print(io, json(result));
      return print(io, result.status === 'revoked' ? `revoked ${id}${values.terminate ? ' (terminating it if running)' : ''}` : `task ${id} already ${result.state}: nothing to revoke`);
    },
  },
  pause: {
    usage: 'celeriac pause <queue>\n\nEvery worker stops fetching from the queue within about a second; running tasks finish; enqueueing goes on.',
    flags: [],
    positionals: 1,
    run: async (app, [queue], values, io) => {
      await app.control.pause(queue!);
      return print(io, values.json ? json({ queue, paused: true }) : `paused ${queue}`);
    },
  },
  purge: {
    usage: 'celeriac purge <queue> --yes\n\nRemoves every ready and delayed task of the queue (running ones finish). Asks on a terminal without --yes.',
    flags: ['yes'],
    positionals: 1,
    confirm: ([queue]) => `remove every waiting task of ${queue}?`,
    timeoutMs: BULK_TIMEOUT_MS,
    run: async (app, [queue], values, io) => {
      const count = await app.control.purge(queue!);
      return print(io, values.json ? json({ queue, purged: count }) : `purged ${count} task(s) from ${queue}`);
    },
  },
  redrive: {
    usage: 'celeriac redrive <queue> [--id <id> …]\n\nPuts dead letters back on the queue as fresh tasks (attempt 1, same id): those named, or all.',
    flags: ['id'],
    positionals: 1,
    timeoutMs: BULK_TIMEOUT_MS,
    run: async (app, [queue], values, io) => {
      const result = await app.control.redrive(queue!, values.id === undefined ? {} : { ids: values.id });
      if (values.json) return print(io, json(result), result.refused.length > 0 ? 1 : 0);
      const lines = [`redrove ${result.redriven.length} dead letter(s) to ${queue}`, ...result.refused.map((r) => `refused ${r.id}: ${r.reason}`)];
      return print(io, lines.join('\n'), result.refused.length > 0 ? 1 : 0);
    },
  },
  discard: {
    usage: 'celeriac discard <queue> --id <id> … [--yes]\n\nRemoves the named dead letters for good. Asks on a terminal without --yes.',
    flags: ['id', 'yes'],
    positionals: 1,
    confirm: ([queue], values) => `remove ${values.id?.length ?? 0} dead letter(s) of ${queue} for good?`,
    timeoutMs: BULK_TIMEOUT_MS,
    run: async (app, [queue], values, io) => {
      if (values.id === undefined) throw new UsageError('discard: name the dead letters with --id <id> (see celeriac inspect dead <queue>)');
      const count = await app.control.discard(queue!, { ids: values.id });
      return print(io, values.json ? json({ queue, discarded: count }) : `discarded ${count} dead letter(s) from ${queue}`, count === 0 ? 1 : 0);
    },
  },
  resume: {
    usage: 'celeriac resume <queue>\n\nLets workers fetch from the queue again.',
    flags: [],
    positionals: 1,
    run: async (app, [queue], values, io) => {
      const was = await app.control.resume(queue!);
      return print(io, values.json ? json({ queue, paused: false, wasPaused: was }) : was ? `resumed ${queue}` : `${queue} was not paused`);
    },
  },
};

const SUMMARIES: Record<string, string> = {
  inspect: 'see a running system: queues | workers | task <id> | dead <queue> | schedules',
  revoke: 'revoke a task (--terminate to abort it if running)',
  pause: 'stop every worker fetching from a queue',
  resume: 'let workers fetch from a queue again',
  purge: "remove a queue's waiting tasks (--yes)",
  redrive: 'put dead letters back on their queue (--id … or all)',
  discard: 'remove dead letters for good (--id … --yes)',
};

async function inspect(argv: string[], io: OperateIo): Promise<number> {
  const [what, ...rest] = argv;
  const command = what === undefined ? undefined : INSPECT[what];
  if (!command) {
    if (what === undefined || what === '--help' || what === '-h') return print(io, `Usage: celeriac inspect <${Object.keys(INSPECT).join(' | ')}> [options]\n\n${COMMON}`, what === undefined ? 2 : 0);
    throw new UsageError(`unknown inspect subject "${what}": use ${Object.keys(INSPECT).join(', ')}`);
  }
  return runCommand(`inspect ${what}`, command, rest, io);
}

/** The operating commands (`celeriac inspect …`, `celeriac revoke …`), for the CLI's dispatcher. */
export const OPERATE_COMMANDS: Record<string, CliCommand> = Object.fromEntries(
  Object.entries(SUMMARIES).map(([name, summary]) => {
    const run = (argv: string[], io: OperateIo) => (name === 'inspect' ? inspect(argv, io) : runCommand(name, CONTROL[name]!, argv, io));
    return [name, { summary, run: (argv: string[], out: Out) => run(argv, processIo(out)) }];
  }),
);

/** The process's streams; a question is asked only where a person can answer it. */
function processIo(out: Out): OperateIo {
  return { out, err: (text) => process.stderr.write(text + '\n'), ...(process.stdin.isTTY && process.stderr.isTTY ? { confirm: askOnTerminal } : {}) };
}

/** Asks a yes/no question on the terminal (on stderr, so stdout stays the command's output). */
async function askOnTerminal(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(`${question} [y/N] `)).trim());
  } finally {
    rl.close();
  }
}

async function runCommand(name: string, command: Command, argv: string[], io: OperateIo): Promise<number> {
  const { values, positionals } = parse(argv);
  if (values.help) return print(io, `Usage: ${command.usage}\n\n${COMMON}`);
  for (const flag of ['queue', 'limit', 'terminate', 'id', 'yes'] as const) {
    if (values[flag] !== undefined && !command.flags.includes(flag)) throw new UsageError(`celeriac ${name} does not take --${flag}\n\nUsage: ${command.usage}`);
  }
  if (positionals.length !== command.positionals) throw new UsageError(`celeriac ${name} takes ${command.positionals || 'no'} argument(s), got ${positionals.length}\n\nUsage: ${command.usage}`);
  // Asked before anything starts (a person may take their time), never silently assumed.
  if (command.confirm && !values.yes && !(await io.confirm?.(command.confirm(positionals, values)))) {
    return refuse(io, `celeriac ${name} removes for good: add --yes to confirm`);
  }
  const app = await openApp(values);
  const timeoutMs = command.timeoutMs ?? OPERATE_TIMEOUT_MS;
  try {
    return await withTimeout(command.run(app, positionals, values, io), timeoutMs, () => new UnreachableError(values, timeoutMs));
  } catch (err) {
    if (err instanceof ControlUnavailableError) return refuse(io, err.message);
    throw err;
  } finally {
    void withTimeout(app.close(), 2_000, () => new Error('close timed out')).catch(() => {});
  }
}

/** The broker or store did not answer in time: exit 2, naming where it looked. */
export class UnreachableError extends CeleriacError {
  constructor(values: ConnectionFlags, timeoutMs: number) {
    const url = values.broker ?? process.env.CELERIAC_BROKER_URL;
    super('BACKEND', `no answer from the broker or store${url ? ` at ${redactUrl(url)}` : ''} within ${timeoutMs / 1_000} s: is it running, and is the URL right?`);
  }
}

/** The connection flags every operating command takes (and the dashboard): `--app`, or `--broker` and `--results`. */
export interface ConnectionFlags {
  app?: string | undefined;
  broker?: string | undefined;
  results?: string | undefined;
}

/** The user's app (`--app`), or an app of no tasks on `--broker`/`--results` (or their variables): operating needs no task definitions. */
export async function openApp(values: ConnectionFlags): Promise<App> {
  if (values.app) return openUserApp({ app: values.app, broker: values.broker });
  const broker = values.broker ?? process.env.CELERIAC_BROKER_URL;
  if (!broker) throw new UsageError('give the broker: --broker <url>, $CELERIAC_BROKER_URL, or --app <module>');
  const results = values.results ?? process.env.CELERIAC_RESULTS_URL;
  return createApp({ broker, ...(results ? { results } : {}) });
}

function parse(argv: string[]) {
  try {
    return parseArgs({ args: argv, options: ARGS, strict: true, allowPositionals: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

function positiveInt(flag: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${flag} must be an integer ≥ 1 (got ${value})`);
  return n;
}

function print(io: OperateIo, text: string, code = 0): number {
  io.out(text);
  return code;
}

/** Not found or refused: the reason on stderr, exit 1. */
function refuse(io: OperateIo, message: string): number {
  io.err(`celeriac: ${message}`);
  return 1;
}
