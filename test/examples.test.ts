import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);

describe('examples', () => {
  it('quickstart runs on memory:// with no server and prints its results', async () => {
    const { stdout } = await run(process.execPath, ['--conditions=@celeriac/source', '--import', 'tsx', 'examples/quickstart/main.ts'], {
      env: { ...process.env, CELERIAC_BROKER_URL: '' },
      timeout: 30_000,
    });
    expect(stdout).toMatch(/math\.add\(1, 2\) = 3 .*succeeded/);
    expect(stdout).toMatch(/quotes\.fetch attempt 2 failed/);
    expect(stdout).toMatch(/quotes\.fetch: \{ symbol: 'CELR', price: 42\.5, attempts: 3 \}/);
    expect(stdout).toMatch(/same task both times: true .* cards charged: 1/);
    expect(stdout).toMatch(/failed as expected: amount over the limit/);
    expect(stdout).toMatch(/invalid enqueue refused: invalid payload for task "math.add": b: /);
  });

  it('periodic runs on memory:// and enqueues one task per tick', async () => {
    const { stdout } = await run(process.execPath, ['--conditions=@celeriac/source', '--import', 'tsx', 'examples/periodic/main.ts'], {
      env: { ...process.env, CELERIAC_BROKER_URL: '' },
      timeout: 30_000,
    });
    const ticks = stdout.match(/pulse report for tick beat:reports\.pulse:\d+/g) ?? [];
    expect(ticks.length).toBeGreaterThanOrEqual(2);
    expect(new Set(ticks).size).toBe(ticks.length);
  });
});
