import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApp, type App } from '@celeriac/core';
import { uniqueQueue } from '@celeriac/core/testing';
import type { Info, QueuesView } from '@celeriac/dashboard';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { lazyCommand } from '../packages/worker/src/cli/lazy-command.js';
import { UsageError } from '../packages/worker/src/usage-error.js';
import { removePrefix, uniquePrefix, urlWith } from './redis/helpers.js';
import { celeriac as run, killLeftovers } from './support/celeriac-cli.js';

// `celeriac dashboard` as an operator runs it: a real process on Redis, the URL it prints, the
// API behind it, a graceful stop on SIGTERM, and the refusal to listen in the open without a token.
const prefix = uniquePrefix('dashcli');
const url = urlWith(prefix);
afterAll(() => removePrefix(prefix));

const apps: App[] = [];
afterEach(async () => {
  killLeftovers();
  for (const a of apps.splice(0)) await a.close();
});

/** The command with none of the caller's celeriac variables; `printed` is the URL of its first stdout line. */
function celeriac(args: string[], env: Record<string, string> = {}) {
  const r = run(args, { CELERIAC_BROKER_URL: '', CELERIAC_DASHBOARD_TOKEN: '', ...env });
  const printed = r.line('stdout', /^http:\/\/\S+$/);
  printed.catch(() => {});
  const exited = r.exited.then((code) => ({ code, stdout: r.stdout.join('\n'), stderr: r.stderr.join('\n') }));
  return { kill: r.kill, printed, exited, stdout: () => r.stdout.join('\n') };
}

describe('celeriac dashboard', () => {
  it('prints the URL it listens on; the API answers there with the queues in use; SIGTERM stops it (exit 0)', async () => {
    const queue = uniqueQueue('dcli');
    const app = createApp({ broker: url, defaultQueue: queue });
    apps.push(app);
    await app.task('dcli.job', { input: z.object({}) }, () => 1).enqueueMany([{ payload: {} }, { payload: {} }]);
    const dash = celeriac(['dashboard', '--port', '0', '--broker', url, '--queues', `${queue}-extra`, '--log-level', 'warn']);
    const base = await dash.printed;
    expect(base).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const queues = (await (await fetch(new URL('api/queues', base))).json()) as QueuesView;
    expect(queues.queues.find((q) => q.queue === queue)).toMatchObject({ ready: 2, paused: false });
    expect(queues.queues.find((q) => q.queue === `${queue}-extra`)).toMatchObject({ ready: 0 });
    const info = (await (await fetch(new URL('api/info', base))).json()) as Info;
    expect(info).toMatchObject({ broker: url, control: true, tokenRequired: false });
    dash.kill('SIGTERM');
    const { code } = await dash.exited;
    expect(code).toBe(0);
  }, 30_000);

  it('--host 0.0.0.0 without a token exits 2 naming --token and CELERIAC_DASHBOARD_TOKEN; with the variable set it serves, the API asking for the token', async () => {
    const refused = await celeriac(['dashboard', '--host', '0.0.0.0', '--port', '0', '--broker', url]).exited;
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/^celeriac: refusing to listen on 0\.0\.0\.0 without a token.*--token <secret> or CELERIAC_DASHBOARD_TOKEN/m);
    expect(refused.stdout).toBe('');

    const dash = celeriac(['dashboard', '--host', '0.0.0.0', '--port', '0', '--broker', url, '--log-level', 'warn'], { CELERIAC_DASHBOARD_TOKEN: 'tok-123' });
    const base = new URL(await dash.printed);
    expect(base.hostname).toBe('127.0.0.1'); // a URL to open, not the wildcard
    const local = base.href;
    const others = Object.values(networkInterfaces()).flat().filter((a) => a && a.family === 'IPv4' && !a.internal);
    for (const a of others) await expect.poll(() => dash.stdout().includes(`http://${a!.address}:${base.port}/`), { timeout: 5_000 }).toBe(true);
    expect((await fetch(new URL('api/info', local))).status).toBe(401);
    const info = (await (await fetch(new URL('api/info', local), { headers: { Authorization: 'Bearer tok-123' } })).json()) as Info;
    expect(info.tokenRequired).toBe(true);
    dash.kill('SIGINT');
    expect((await dash.exited).code).toBe(0);
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

  it('a package that is there but misses a dependency of its own reports that dependency, not itself', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'celeriac-lazy-'));
    const module = join(dir, 'needs-dep.mjs');
    writeFileSync(module, "import 'celeriac-no-such-dependency';\nexport const dashboardCommand = { run: () => 0 };\n");
    try {
      const command = lazyCommand('dashboard', module, 'dashboardCommand', 'summary');
      const err = await command.run([], () => {}).catch((e: unknown) => e);
      expect(err).not.toBeInstanceOf(UsageError);
      expect(String((err as Error).message)).toContain("Cannot find package 'celeriac-no-such-dependency'");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('runs the named export of the package when it is there', async () => {
    const command = lazyCommand('dashboard', '@celeriac/dashboard', 'dashboardCommand', 'summary');
    const lines: string[] = [];
    expect(await command.run(['--help'], (line) => lines.push(line))).toBe(0);
    expect(lines.join('\n')).toMatch(/^Usage: celeriac dashboard/);
  });
});
