import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createApp } from './app.js';
import { Attempt } from './attempt.js';
import { runDelivery } from './execution.js';
import { childLogger, consoleLogger, jsonLogger, levelEnabled, silentLogger, type Logger } from './logger.js';
import { MemoryBroker } from './memory/broker.js';
import { uniqueQueue } from './testing/messages.js';

/** A logger that records its calls as they were made. */
function recorder() {
  const calls: [string, ...unknown[]][] = [];
  const at =
    (level: string) =>
    (...args: unknown[]) =>
      void calls.push([level, ...args]);
  const logger: Logger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
  return { logger, calls };
}

describe('childLogger', () => {
  it('merges its bindings into every call of a logger without child(), the call’s own fields winning', () => {
    const { logger, calls } = recorder();
    const log = childLogger(logger, { taskId: 't1', attempt: 1 });
    log.info('plain message');
    log.warn({ attempt: 2, extra: true }, 'with fields');
    log.error({ only: 'fields' });
    log.debug('low');
    expect(calls).toEqual([
      ['info', { taskId: 't1', attempt: 1 }, 'plain message'],
      ['warn', { taskId: 't1', attempt: 2, extra: true }, 'with fields'],
      ['error', { taskId: 't1', attempt: 1, only: 'fields' }],
      ['debug', { taskId: 't1', attempt: 1 }, 'low'],
    ]);
  });

  it('uses the logger’s own child() where it has one (pino)', () => {
    const { logger: bound } = recorder();
    const given: Record<string, unknown>[] = [];
    const pinoLike: Logger = { ...recorder().logger, child: (b) => (given.push(b), bound) };
    expect(childLogger(pinoLike, { taskId: 't2' })).toBe(bound);
    expect(given).toEqual([{ taskId: 't2' }]);
  });

  it('nests: a child of a child carries both sets of bindings', () => {
    const { logger, calls } = recorder();
    childLogger(childLogger(logger, { worker: 'w1' }), { taskId: 't3' }).info('hi');
    expect(calls).toEqual([['info', { worker: 'w1', taskId: 't3' }, 'hi']]);
  });

  it('puts the bindings on the lines of the celeriac loggers', () => {
    const lines: string[] = [];
    childLogger(consoleLogger('info', (l) => lines.push(l)), { taskId: 't4' }).info({ n: 1 }, 'from a handler');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/ info  from a handler \{"taskId":"t4","n":1\}$/);
  });
});

describe('jsonLogger', () => {
  it('writes one JSON object a line in pino’s shape and levels', () => {
    const lines: string[] = [];
    const log = jsonLogger('debug', (l) => lines.push(l));
    const before = Date.now();
    log.debug('d');
    log.info({ taskId: 't1', durationMs: 12 }, 'task succeeded');
    log.warn('w');
    log.error({ err: new TypeError('boom') }, 'e');
    const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(parsed.map((p) => p.level)).toEqual([20, 30, 40, 50]);
    expect(parsed[1]).toEqual({ level: 30, time: expect.any(Number), pid: process.pid, hostname: hostname(), taskId: 't1', durationMs: 12, msg: 'task succeeded' });
    expect(parsed[1]!.time).toBeGreaterThanOrEqual(before);
    expect(parsed[3]!.err).toMatchObject({ type: 'TypeError', message: 'boom', stack: expect.stringContaining('boom') });
  });

  it('drops lines below its level, and everything when silent', () => {
    const lines: string[] = [];
    const warnOnly = jsonLogger('warn', (l) => lines.push(l));
    warnOnly.debug('no');
    warnOnly.info('no');
    warnOnly.warn('yes');
    jsonLogger('silent', (l) => lines.push(l)).error('no');
    expect(lines.map((l) => (JSON.parse(l) as { msg: string }).msg)).toEqual(['yes']);
  });

  it('never throws on fields JSON cannot write (a log line must not break the caller)', () => {
    const lines: string[] = [];
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    const log = jsonLogger('info', (l) => lines.push(l));
    log.info({ cyclic, big: 10n }, 'odd fields');
    expect(JSON.parse(lines[0]!)).toMatchObject({ msg: 'odd fields', cyclic: { a: 1, self: '[Circular]' }, big: '10' });
  });
});

describe('ctx.log', () => {
  it('is the logger the worker passes (not the app’s), bound to the task’s id, name and attempt', async () => {
    const app = createApp({ broker: new MemoryBroker(), defaultQueue: uniqueQueue('log') });
    const { logger, calls } = recorder();
    const t = app.task('log.me', { input: z.object({}) }, (_, ctx) => ctx.log.info({ step: 1 }, 'from the handler'));
    const handle = await t.enqueue({});
    const conn = await app.connection();
    const [delivery] = await conn.broker.fetch({ queues: [handle.queue], max: 1, leaseMs: 5_000, waitMs: 0 });
    expect(await runDelivery(app, conn, delivery!, { attempt: new Attempt(), leaseMs: 5_000, logger })).toBe('succeeded');
    expect(calls).toEqual([['info', { taskId: handle.id, task: 'log.me', attempt: 1, step: 1 }, 'from the handler']]);
    await app.close();
  });
});

describe('consoleLogger on a closed pipe', () => {
  it('loses the lines, never the process, when the reader of stderr goes away (EPIPE)', async () => {
    const { spawn } = await import('node:child_process');
    const script = "const { consoleLogger } = await import('@celeriac/core'); const log = consoleLogger('info'); for (let i = 0; i < 20000; i++) log.info('line ' + i); await new Promise((r) => setTimeout(r, 200)); process.stdout.write('alive');";
    const child = spawn(process.execPath, ['--conditions=@celeriac/source', '--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stderr.once('data', () => child.stderr.destroy()); // the reader goes away after the first line
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect([code, out]).toEqual([0, 'alive']);
  }, 30_000);
});

describe('levelEnabled', () => {
  it('says which levels write, for this module loggers, pino-like ones and children; a child of an off level is a no-op', () => {
    const lines: string[] = [];
    const info = consoleLogger('info', (l) => lines.push(l));
    expect([levelEnabled(info, 'debug'), levelEnabled(info, 'info'), levelEnabled(info, 'error')]).toEqual([false, true, true]);
    const child = childLogger(info, { taskId: 't' });
    expect([levelEnabled(child, 'debug'), levelEnabled(child, 'info')]).toEqual([false, true]);
    child.debug({ big: 'x' }, 'unseen');
    child.info('seen');
    expect(lines).toHaveLength(1);
    const pinoLike = { ...silentLogger, isLevelEnabled: (l: string) => l === 'warn' } as Logger;
    expect([levelEnabled(pinoLike, 'warn'), levelEnabled(pinoLike, 'info')]).toEqual([true, false]);
  });
});
