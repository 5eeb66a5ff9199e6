import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { sleep } from '@celeriac/core/testing';

/** Starts a worker process; resolves once it is fetching. Lines it prints go to `lines`. */
export async function spawnWorker(url: string, queue: string, leaseMs: number, concurrency: number, lines: string[] = []): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--conditions=@celeriac/source', '--import', 'tsx', fileURLToPath(new URL('./fault-worker.ts', import.meta.url)), url, queue, String(leaseMs), String(concurrency)], {
    stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env },
  });
  let rest = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    const parts = (rest + chunk.toString()).split('\n');
    rest = parts.pop()!;
    lines.push(...parts);
  });
  const deadline = Date.now() + 20_000;
  while (!lines.includes('ready')) {
    if (child.exitCode !== null) throw new Error(`worker exited early with ${child.exitCode}`);
    if (Date.now() > deadline) throw new Error('worker did not start within 20 s');
    await sleep(20);
  }
  return child;
}

export async function waitFor(what: string, ok: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(10);
  }
}

