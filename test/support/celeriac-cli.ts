import { spawn } from 'node:child_process';

// `celeriac …` run as a real process from sources, for the tests of the command.

const CLI = ['--import', 'tsx', '--conditions=@celeriac/source', 'packages/worker/src/run-cli.ts'];

export type Stream = 'stdout' | 'stderr';
export interface Run {
  stdout: string[];
  stderr: string[];
  /** Resolves with the exit code once the process has exited. */
  exited: Promise<number | null>;
  kill(signal?: NodeJS.Signals): void;
  /** Resolves with the first line of `stream` (seen so far or to come) matching `pattern`. */
  line(stream: Stream, pattern: RegExp): Promise<string>;
}

/** Starts `celeriac …` from sources, collecting its lines. */
export function celeriac(args: string[], env: Record<string, string> = {}): Run {
  const child = spawn(process.execPath, [...CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: Record<Stream, string[]> = { stdout: [], stderr: [] };
  const waiters: { stream: Stream; pattern: RegExp; resolve: (line: string) => void }[] = [];
  for (const stream of ['stdout', 'stderr'] as const) {
    let partial = '';
    child[stream].on('data', (chunk: Buffer) => {
      const parts = (partial + chunk.toString()).split('\n');
      partial = parts.pop()!;
      for (const line of parts) {
        lines[stream].push(line);
        for (const w of waiters.filter((w) => w.stream === stream && w.pattern.test(line))) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(line);
        }
      }
    });
  }
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  running.push(child);
  return {
    ...lines,
    exited,
    kill: (signal = 'SIGTERM') => child.kill(signal),
    line: (stream, pattern) => {
      const seen = lines[stream].find((l) => pattern.test(l));
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        waiters.push({ stream, pattern, resolve });
        void exited.then(() => reject(new Error(`celeriac exited before printing ${pattern} on ${stream}:\n${lines.stderr.join('\n')}`)));
      });
    },
  };
}

const running: ReturnType<typeof spawn>[] = [];

/** Kills what `celeriac()` started and is still running (a test that failed half-way): `afterEach(killLeftovers)`. */
export function killLeftovers(): void {
  for (const child of running.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
}
