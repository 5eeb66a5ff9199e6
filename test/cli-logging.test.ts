import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createApp } from '@celeriac/core';
import { removePrefix, uniquePrefix, urlWith } from './redis/helpers.js';
import { celeriac, killLeftovers, type Run } from './support/celeriac-cli.js';
import { FaultProxy } from './support/fault-proxy.js';

// What `celeriac worker` tells a person (and a log collector): the banner, a line per task
// outcome, ctx.log bound to its task, broker outages. Real processes, run from sources.

const APP = 'test/fixtures/cli-logging-app.ts';

afterEach(killLeftovers);

/** The ids the fixture printed for what it enqueued, by task name. */
async function enqueued(run: Run): Promise<Record<string, string>> {
  const ids: Record<string, string> = {};
  for (const task of ['log.greets', 'log.flaky', 'log.refuses']) ids[task] = (await run.line('stdout', new RegExp(`^enqueued ${task} `))).split(' ')[2]!;
  return ids;
}

describe('celeriac worker logs', () => {
  it('a line per task outcome with its id, duration and attempt; ctx.log bound to the task though the app has no logger; the memory:// warning', async () => {
    const run = celeriac(['worker', '--app', APP], { FIXTURE_ENQUEUE: '1' });
    const ids = await enqueued(run);
    const ms = String.raw`\d+ ms`;
    await run.line('stderr', new RegExp(`info  log\\.greets\\[${ids['log.greets']}\\] succeeded in ${ms} \\(attempt 1/3\\)$`));
    await run.line('stderr', new RegExp(`warn  log\\.flaky\\[${ids['log.flaky']}\\] failed in ${ms} \\(attempt 1/3\\); retrying in 50 ms: Error: not yet$`));
    await run.line('stderr', new RegExp(`info  log\\.flaky\\[${ids['log.flaky']}\\] succeeded in ${ms} \\(attempt 2/3\\)$`));
    await run.line('stderr', new RegExp(`error log\\.refuses\\[${ids['log.refuses']}\\] failed in ${ms} \\(attempt 1/2\\), for good: non-retryable error: no way$`));
    run.kill();
    expect(await run.exited).toBe(0);

    // ctx.log: the worker's logger, bound to the task, with the handler's own fields.
    const fromHandler = run.stderr.filter((l) => l.includes('hello from a handler'));
    expect(fromHandler).toHaveLength(1);
    expect(fromHandler[0]).toMatch(/ info  hello from a handler \{.*\}$/);
    expect(JSON.parse(fromHandler[0]!.slice(fromHandler[0]!.indexOf('{')))).toEqual({ taskId: ids['log.greets'], task: 'log.greets', attempt: 1, name: 'ada' });

    expect(run.stderr.filter((l) => l.includes('cannot see tasks enqueued by other processes'))).toHaveLength(1);
    expect(run.stderr.some((l) => / debug /.test(l))).toBe(false); // info is the default level: starts are not logged
  });

  it('--log-format json: pino-shaped lines that parse, with the task facts as fields; --log-level debug adds the starts', async () => {
    const run = celeriac(['worker', '--app', APP, '--log-format', 'json', '--log-level', 'debug'], { FIXTURE_ENQUEUE: '1' });
    const ids = await enqueued(run);
    await run.line('stderr', new RegExp(`"msg":"log\\.flaky\\[${ids['log.flaky']}\\] succeeded`));
    await run.line('stderr', /"msg":"log\.refuses\[.*for good/);
    run.kill();
    expect(await run.exited).toBe(0);

    const records = run.stderr.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(records.length).toBeGreaterThan(8);
    for (const r of records) {
      expect(r).toMatchObject({ level: expect.any(Number), time: expect.any(Number), pid: expect.any(Number), hostname: hostname(), msg: expect.any(String) });
      expect([20, 30, 40, 50]).toContain(r.level);
    }
    const about = (id: string) => records.filter((r) => r.taskId === id);
    expect(about(ids['log.greets']!)).toEqual([
      expect.objectContaining({ level: 20, task: 'log.greets', attempt: 1, maxAttempts: 3, msg: expect.stringMatching(/started \(attempt 1\/3\)$/) }),
      expect.objectContaining({ level: 30, task: 'log.greets', attempt: 1, name: 'ada', msg: 'hello from a handler' }),
      expect.objectContaining({ level: 30, task: 'log.greets', attempt: 1, maxAttempts: 3, queue: 'default', durationMs: expect.any(Number), msg: expect.stringMatching(/succeeded in \d+ ms/) }),
    ]);
    expect(about(ids['log.flaky']!).filter((r) => r.level !== 20)).toEqual([
      expect.objectContaining({ level: 40, attempt: 1, durationMs: expect.any(Number), error: 'Error: not yet', retryInMs: 50 }),
      expect.objectContaining({ level: 30, attempt: 2, durationMs: expect.any(Number) }),
    ]);
    expect(about(ids['log.refuses']!).filter((r) => r.level !== 20)).toEqual([
      expect.objectContaining({ level: 50, attempt: 1, maxAttempts: 2, error: 'NonRetryableError: no way', reason: 'non-retryable error: no way', durationMs: expect.any(Number) }),
    ]);
    expect(records.find((r) => r.msg === 'celeriac worker starting')).toMatchObject({ broker: 'memory (in this process)', queues: ['default'], concurrency: 10, tasks: ['log.flaky', 'log.greets', 'log.refuses'] });
  });

  it('rejects an unknown --log-format', async () => {
    const run = celeriac(['worker', '--app', APP, '--log-format', 'xml']);
    expect(await run.exited).toBe(2);
    expect(run.stderr.join('\n')).toMatch(/--log-format must be pretty or json \(got xml\)/);
  });

  it('opens with a banner: version, broker URL with the password hidden, queues, concurrency, tasks', async () => {
    const prefix = uniquePrefix('clilog');
    try {
      const url = urlWith(prefix, 'redis://default:secret@127.0.0.1:6379/');
      const run = celeriac(['worker', '--app', APP, '--broker', url, '--concurrency', '3', '--queues', 'default,other']);
      await run.line('stderr', /worker started/);
      run.kill();
      expect(await run.exited).toBe(0);
      const log = run.stderr.join('\n');
      const { version } = JSON.parse(readFileSync('packages/worker/package.json', 'utf8')) as { version: string };
      expect(log).toContain(`info  celeriac ${version} worker\n`);
      expect(log).toContain(`  broker       redis://default:***@127.0.0.1:6379/?prefix=${prefix}\n`);
      expect(log).toContain('  queues       default, other\n');
      expect(log).toContain('  concurrency  3 (lease 30 s)\n');
      expect(log).toContain('  tasks        log.flaky, log.greets, log.refuses\n');
      expect(log).not.toContain('secret');
      expect(log).not.toContain('cannot see tasks enqueued by other processes'); // Redis is shared
    } finally {
      await removePrefix(prefix);
    }
  });

  it('logs a broker outage once as a warning, not once per retry, then its recovery, and runs tasks again', async () => {
    const prefix = uniquePrefix('clilog');
    const proxy = await new FaultProxy('redis://127.0.0.1:6379').start();
    const app = createApp({ broker: urlWith(prefix) });
    try {
      // A 1 s lease: a fetch left unanswered counts as failed after blockMs (5 s) + 1 s.
      const run = celeriac(['worker', '--app', APP, '--broker', urlWith(prefix, `redis://127.0.0.1:${proxy.port}/`), '--lease-ms', '1000', '--log-level', 'debug']);
      await run.line('stderr', /worker started/);
      proxy.refuse(); // Redis is down: connections are refused…
      proxy.cut(); // …and the open ones are gone
      await run.line('stderr', /warn  cannot fetch from the broker \(BackendError: .*\); retrying in 0\.1 s/);
      await run.line('stderr', /debug fetch failed again; backing off/); // a second failure, not a second warning
      proxy.heal();
      const recovered = await run.line('stderr', /info  broker reachable again after \d+ s/);
      const greets = app.task('log.greets', { input: z.object({ name: z.string() }) }, () => '');
      const handle = await greets.enqueue({ name: 'after the outage' });
      await run.line('stderr', new RegExp(`log\\.greets\\[${handle.id}\\] succeeded`));
      run.kill();
      expect(await run.exited).toBe(0);
      expect(run.stderr.filter((l) => l.includes('cannot fetch from the broker'))).toHaveLength(1);
      expect(run.stderr.filter((l) => l.includes('broker reachable again'))).toEqual([recovered]);
      expect(run.stderr.filter((l) => / (warn|error) /.test(l))).toHaveLength(1); // nothing else shouted about it
    } finally {
      await app.close();
      await proxy.close();
      await removePrefix(prefix);
    }
  }, 90_000);
});
