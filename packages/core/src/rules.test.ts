import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createApp } from './app.js';
import { encodeMessage, parseMessage } from './envelope.js';
import { ValidationError } from './errors.js';
import { assertQueueName, assertTaskName } from './names.js';
import { parseOptions, retryPolicySchema } from './options.js';
import { backoffDelay } from './retry.js';
import { makeMessage } from './testing/messages.js';

describe('retry policy', () => {
  const policy = (p: z.input<typeof retryPolicySchema>) => parseOptions(retryPolicySchema, p, 'retry');

  it('grows exponentially and caps at maxDelayMs', () => {
    const p = policy({ delayMs: 100, maxDelayMs: 1_000, jitter: false });
    expect([1, 2, 3, 4, 5, 6].map((a) => backoffDelay(p, a))).toEqual([100, 200, 400, 800, 1_000, 1_000]);
  });

  it('stays flat when fixed', () => {
    const p = policy({ backoff: 'fixed', delayMs: 250, jitter: false });
    expect([1, 2, 7].map((a) => backoffDelay(p, a))).toEqual([250, 250, 250]);
  });

  it('draws full jitter uniformly in [0, delay]', () => {
    const p = policy({ delayMs: 100, maxDelayMs: 10_000, jitter: true });
    expect(backoffDelay(p, 3, () => 0)).toBe(0);
    expect(backoffDelay(p, 3, () => 0.5)).toBe(200);
    expect(backoffDelay(p, 3, () => 0.999999)).toBe(400);
  });

  it('has sane defaults and names the field and value when wrong', () => {
    expect(policy({})).toEqual({ maxAttempts: 3, backoff: 'exponential', delayMs: 1_000, maxDelayMs: 60_000, jitter: true });
    expect(() => policy({ maxAttempts: 0 })).toThrow(/invalid retry: maxAttempts: .*>=1 \(got 0\)/);
    expect(() => policy({ backoff: 'linear' as never })).toThrow(/backoff: .*\(got "linear"\)/);
  });
});

describe('names', () => {
  it('accepts ordinary names', () => {
    expect(assertQueueName('emails.high-priority_2')).toBe('emails.high-priority_2');
    expect(assertTaskName('billing:charge.v2')).toBe('billing:charge.v2');
  });

  it.each(['', 'a b', 'q{x}', 'q:1', '.hidden', 'x'.repeat(101), 'a\nb', 'é'])('rejects queue name %j', (name) => {
    expect(() => assertQueueName(name)).toThrow(ValidationError);
  });

  it.each(['', 'has space', 'a{b}', 'x'.repeat(201), 'a/b'])('rejects task name %j', (name) => {
    expect(() => assertTaskName(name)).toThrow(/invalid task name/);
  });
});

describe('envelope', () => {
  it('round-trips through JSON', () => {
    const msg = makeMessage('q', { payload: { nested: [1, { x: null }] }, idempotencyKey: 'k' });
    expect(parseMessage(encodeMessage(msg))).toEqual({ ok: true, message: msg });
  });

  it('explains what is wrong with a bad message', () => {
    expect(parseMessage('{nope')).toMatchObject({ ok: false, reason: expect.stringMatching(/^malformed message: not JSON/) });
    const bad = parseMessage(JSON.stringify({ ...makeMessage('q'), v: 2, priority: 42 }));
    expect(bad.ok).toBe(false);
    expect(!bad.ok && bad.reason).toMatch(/v[\s\S]*priority/);
    const injected = parseMessage(JSON.stringify({ ...makeMessage('q'), queue: 'q}{evil' }));
    expect(!injected.ok && injected.reason).toMatch(/queue/);
  });
});

describe('createApp and app.task', () => {
  it('refuses bad definitions with messages that say the fix', () => {
    expect(() => createApp({} as never)).toThrow(/broker is required/);
    expect(() => createApp({ broker: 'memory://', resultTtlMs: -1 })).toThrow(/resultTtlMs: .*\(got -1\)/);
    const app = createApp({ broker: 'memory://' });
    expect(() => app.task('bad name', { input: z.object({}) }, () => 1)).toThrow(/invalid task name "bad name"/);
    expect(() => app.task('t', {} as never, () => 1)).toThrow(/input must be a zod schema/);
    expect(() => app.task('t', { input: z.object({}), retry: { maxAttempts: 0 } }, () => 1)).toThrow(/retry\.maxAttempts: .*\(got 0\)/);
    expect(() => app.task('t', { input: z.object({}), queue: 'a b' }, () => 1)).toThrow(/queue: must be a valid queue name/);
    app.task('t', { input: z.object({}) }, () => 1);
    expect(() => app.task('t', { input: z.object({}) }, () => 1)).toThrow(/already registered/);
  });

  it('explains broker URLs it cannot use, hiding passwords', async () => {
    await expect(createApp({ broker: 'kafka://x' }).connection()).rejects.toThrow(/unsupported scheme kafka:/);
    await expect(createApp({ broker: 'not a url :secret@' }).connection()).rejects.toThrow(/is not a URL/);
  });

  it('refuses payloads that do not survive JSON or the schema, at enqueue', async () => {
    const app = createApp({ broker: 'memory://' });
    const t = app.task('when', { input: z.object({ at: z.date() }) }, () => 1);
    await expect(t.enqueue({ at: new Date() })).rejects.toThrow(/invalid payload for task "when": at: .*date/);
    const c = app.task('coerced', { input: z.object({ at: z.coerce.date() }) }, ({ at }) => at.getTime());
    await expect(c.enqueue({ at: new Date() })).resolves.toMatchObject({ duplicate: false });
    const big = app.task('big', { input: z.object({ n: z.bigint() }) }, () => 1);
    await expect(big.enqueue({ n: 1n })).rejects.toThrow(/not JSON-serialisable/);
    await expect(t.enqueue({ at: new Date() }, { delayMs: 1, eta: 5 } as never)).rejects.toThrow(/delayMs or eta, not both/);
    await app.close();
  });
});
