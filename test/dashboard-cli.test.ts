import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createApp, type App } from '@celeriac/core';
import { uniqueQueue } from '@celeriac/core/testing';
import type { Info, QueuesView } from '@celeriac/dashboard';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { lazyCommand } from '../packages/worker/src/cli/lazy-command.js';
import { UsageError } from '../packages/worker/src/usage-error.js';
import { removePrefix, uniquePrefix, urlWith } from './redis/helpers.js';

// `celeriac dashboard` as an operator runs it: a real process on Redis, the URL it prints, the
// API behind it, a graceful stop on SIGTERM, and the refusal to listen in the open without a token.
const CLI = ['--import', 'tsx', '--conditions=@celeriac/source', 'packages/worker/src/run-cli.ts'];
const prefix = uniquePrefix('dashcli');
const url = urlWith(prefix);
afterAll(() => removePrefix(prefix));

const children: ChildProcessWithoutNullStreams[] = [];
const apps: App[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const a of apps.splice(0)) await a.close();
});

function celeriac(args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, [...CLI, ...args], { env: { ...process.env, CELERIAC_BROKER_URL: '', CELERIAC_DASHBOARD_TOKEN: '', ...env } });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
  /** The URL the command prints on its first stdout line (bounded: it exits or prints within 15 s). */
  const printed = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no URL within 15 s; stderr: ${stderr}`)), 15_000);
    child.stdout.on('data', () => {
      const line = /^(http:\/\/\S+)\n/.exec(stdout);
      if (line) {
        clearTimeout(timer);
        resolve(line[1]!);
      }
    });
    void exited.then((r) => {
      clearTimeout(timer);
      reject(new Error(`exited ${r.code} before printing a URL: ${r.stderr}`));
    });
  });
  printed.catch(() => {});
  return { child, exited, printed };
}

describe('celeriac dashboard', () => {
  it('prints the URL it listens on; the API answers there with the queues in use; SIGTERM stops it (exit 0)', async () => {
    const queue = uniqueQueue('dcli');
    const app = createApp({ broker: url, defaultQueue: queue });
    apps.push(app);
    await app.task('dcli.job', { input: z.object({}) }, () => 1).enqueueMany([{ payload: {} }, { payload: {} }]);
    const run = celeriac(['dashboard', '--port', '0', '--broker', url, '--queues', `${queue}-extra`, '--log-level', 'warn']);
    const base = await run.printed;
    expect(base).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const queues = (await (await fetch(new URL('api/queues', base))).json()) as QueuesView;
    expect(queues.queues.find((q) => q.queue === queue)).toMatchObject({ ready: 2, paused: false });
    expect(queues.queues.find((q) => q.queue === `${queue}-extra`)).toMatchObject({ ready: 0 });
    const info = (await (await fetch(new URL('api/info', base))).json()) as Info;
    expect(info).toMatchObject({ broker: url, control: true, tokenRequired: false });
    run.child.kill('SIGTERM');
    const { code } = await run.exited;
    expect(code).toBe(0);
  }, 30_000);

  it('--host 0.0.0.0 without a token exits 2 naming --token and CELERIAC_DASHBOARD_TOKEN; with the variable set it serves, the API asking for the token', async () => {
    const refused = await celeriac(['dashboard', '--host', '0.0.0.0', '--port', '0', '--broker', url]).exited;
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/^celeriac: refusing to listen on 0\.0\.0\.0 without a token.*--token <secret> or CELERIAC_DASHBOARD_TOKEN/m);
    expect(refused.stdout).toBe('');

    const run = celeriac(['dashboard', '--host', '0.0.0.0', '--port', '0', '--broker', url, '--log-level', 'warn'], { CELERIAC_DASHBOARD_TOKEN: 'tok-123' });
    const base = new URL(await run.printed);
    expect(base.hostname).toBe('0.0.0.0');
    const local = `http://127.0.0.1:${base.port}/`;
    expect((await fetch(new URL('api/info', local))).status).toBe(401);
    const info = (await (await fetch(new URL('api/info', local), { headers: { Authorization: 'Bearer tok-123' } })).json()) as Info;
    expect(info.tokenRequired).toBe(true);
    run.child.kill('SIGINT');
    expect((await run.exited).code).toBe(0);
  }, 30_000);

  it('bad flags are usage errors (exit 2); --help lists the options', async () => {
    const noBroker = await celeriac(['dashboard', '--port', '0']).exited;
    expect([noBroker.code, noBroker.stderr.trim()]).toEqual([2, 'celeriac: give the broker: --broker <url>, $CELERIAC_BROKER_URL, or --app <module>']);
    const badPort = await celeriac(['dashboard', '--port', 'x', '--broker', url]).exited;
    expect([badPort.code, badPort.stderr.trim()]).toEqual([2, 'celeriac: --port must be an integer ≥ 0 (got x)']);
    const help = await celeriac(['dashboard', '--help']).exited;
    expect(help.code).toBe(0);
    for (const flag of ['--broker', '--results', '--app', '--host', '--port', '--token', '--queues', '--log-level']) expect(help.stdout).toContain(flag);
  }, 30_000);
});

describe('a command from a package not installed', () => {
  it('is a usage error that says what to install', async () => {
    const command = lazyCommand('dashboard', '@celeriac/no-such-package', 'dashboardCommand', 'summary');
    await expect(command.run([], () => {})).rejects.toThrow(UsageError);
    await expect(command.run([], () => {})).rejects.toThrow('celeriac dashboard needs @celeriac/no-such-package: npm install @celeriac/no-such-package');
  });

  it('runs the named export of the package when it is there', async () => {
    const command = lazyCommand('dashboard', '@celeriac/dashboard', 'dashboardCommand', 'summary');
    const lines: string[] = [];
    expect(await command.run(['--help'], (line) => lines.push(line))).toBe(0);
    expect(lines.join('\n')).toMatch(/^Usage: celeriac dashboard/);
  });
});
