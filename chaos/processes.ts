import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = ['--conditions=@celeriac/source', '--import', 'tsx', join(ROOT, 'packages/worker/src/run-cli.ts')];
const APP = join(ROOT, 'chaos/app.ts');

export interface WorkerSpec {
  broker: string;
  queue: string;
  concurrency: number;
  leaseMs: number;
  env: Record<string, string>;
  /** Where the process's stderr goes (one file per process, for the post-mortem). */
  logDir: string;
}

/**
 * A `celeriac` child process (worker or beat) run from sources, as a user runs the command.
 * 1. Spawns it with the chaos app and the run's environment; its output goes to a log file.
 * 2. `ready` resolves when it logs that it started (bounded), `exited` when it is gone.
 * 3. `kill(signal)` signals this process only (by its pid).
 */
export class CeleriacProcess {
  readonly child: ChildProcess;
  readonly ready: Promise<void>;
  readonly exited: Promise<number | null>;
  static #n = 0;

  constructor(args: string[], env: Record<string, string>, logDir: string, readyText: RegExp) {
    mkdirSync(logDir, { recursive: true });
    const log = createWriteStream(join(logDir, `${args[0]}-${++CeleriacProcess.#n}.log`));
    this.child = spawn(process.execPath, [...CLI, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.exited = new Promise((r) => this.child.once('exit', (code) => r(code)));
    this.ready = new Promise<void>((resolveReady, reject) => {
      let seen = '';
      const timer = setTimeout(() => reject(new Error(`celeriac ${args[0]} did not start within 60 s; see ${logDir}`)), 60_000);
      this.child.stderr!.on('data', (chunk: Buffer) => {
        log.write(chunk);
        if (seen !== null) {
          seen += chunk.toString();
          if (readyText.test(seen)) {
            clearTimeout(timer);
            resolveReady();
          }
          if (seen.length > 100_000) seen = seen.slice(-10_000);
        }
      });
      void this.exited.then((code) => {
        clearTimeout(timer);
        log.end();
        reject(new Error(`celeriac ${args[0]} exited with ${code} before it started; see ${logDir}`));
      });
    });
    this.ready.catch(() => {});
    this.child.stdout!.on('data', (chunk: Buffer) => log.write(chunk));
  }

  get pid(): number {
    return this.child.pid!;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  kill(signal: NodeJS.Signals): void {
    if (this.alive) this.child.kill(signal);
  }

  /** SIGTERM, then SIGKILL if it is still there after `graceMs`. */
  async stop(graceMs = 5_000): Promise<void> {
    if (!this.alive) return;
    this.kill('SIGTERM');
    const timer = setTimeout(() => this.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

export function startWorker(spec: WorkerSpec): CeleriacProcess {
  const args = ['worker', '--app', APP, '--broker', spec.broker, '--queues', spec.queue, '--concurrency', String(spec.concurrency), '--lease-ms', String(spec.leaseMs), '--grace-ms', '2000', '--log-level', 'info'];
  return new CeleriacProcess(args, spec.env, spec.logDir, /worker started/);
}

export function startBeat(broker: string, env: Record<string, string>, logDir: string): CeleriacProcess {
  return new CeleriacProcess(['beat', '--app', APP, '--broker', broker, '--log-level', 'info'], env, logDir, /scheduler started/);
}

/** A node child running a TypeScript file from sources (e.g. the idempotency race's producers). */
export function runScript(file: string, args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--conditions=@celeriac/source', '--import', 'tsx', join(ROOT, file), ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  return new Promise((r) => child.on('close', (code) => r({ code, stdout, stderr })));
}
