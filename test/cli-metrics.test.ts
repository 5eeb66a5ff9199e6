import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { celeriac, killLeftovers } from './support/celeriac-cli.js';
import { parsePrometheus, sampleValue } from './support/prometheus.js';

// `celeriac worker --metrics-port`: the banner says where, Prometheus scrapes there, and an
// address other than loopback needs a token. Real processes, run from sources.

const APP = 'test/fixtures/cli-app.ts';

afterEach(killLeftovers);

const scrape = (url: string, headers: Record<string, string> = {}) => fetch(url, { headers, signal: AbortSignal.timeout(10_000) });

describe('celeriac worker --metrics-port', () => {
  it('--metrics-port 0 prints the URL it listens on and serves the counts there; stops serving on stop', async () => {
    const run = celeriac(['worker', '--app', APP, '--metrics-port', '0'], { FIXTURE_TASKS: '2', CELERIAC_METRICS_TOKEN: '' });
    const url = (await run.line('stderr', /^\s+metrics\s+http:\/\/127\.0\.0\.1:\d+\/metrics$/)).trim().split(/\s+/)[1]!;
    expect(url).not.toMatch(/:0\//);
    await run.line('stdout', /^finished 1$/);
    await expect
      .poll(async () => sampleValue(parsePrometheus(await (await scrape(url)).text()), 'celeriac_tasks_total', { queue: 'default', task: 'echo', outcome: 'succeeded' }), { timeout: 10_000 })
      .toBe(2);
    run.kill();
    expect(await run.exited).toBe(0);
    await expect(scrape(url)).rejects.toThrow();
  });

  it('refuses --metrics-host 0.0.0.0 without a token (exit 2, naming the flag and the variable), and needs the Bearer token with one', async () => {
    const refused = celeriac(['worker', '--app', APP, '--metrics-port', '0', '--metrics-host', '0.0.0.0'], { CELERIAC_METRICS_TOKEN: '' });
    expect(await refused.exited).toBe(2);
    expect(refused.stderr.join('\n')).toMatch(/celeriac: refusing to listen on 0\.0\.0\.0 without a token.*Set --metrics-token <secret> or CELERIAC_METRICS_TOKEN/);

    const run = celeriac(['worker', '--app', APP, '--metrics-port', '0', '--metrics-host', '0.0.0.0'], { CELERIAC_METRICS_TOKEN: 'tok-123' });
    const port = /:(\d+)\/metrics$/.exec(await run.line('stderr', /^\s+metrics\s+http:\/\/0\.0\.0\.0:\d+\/metrics$/))![1];
    const url = `http://127.0.0.1:${port}/metrics`;
    expect((await scrape(url)).status).toBe(401);
    expect((await scrape(url, { authorization: 'Bearer nope' })).status).toBe(401);
    const ok = await scrape(url, { authorization: 'Bearer tok-123' });
    expect(ok.status).toBe(200);
    expect(parsePrometheus(await ok.text()).types.get('celeriac_tasks_total')).toBe('counter');
    run.kill();
    expect(await run.exited).toBe(0);
  });

  it('names the fix when the port is taken (exit 2), and its help prefers the token variable to the flag', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = taken.address() as AddressInfo;
      const busy = celeriac(['worker', '--app', APP, '--metrics-port', String(port)], { CELERIAC_METRICS_TOKEN: '' });
      expect(await busy.exited).toBe(2);
      expect(busy.stderr.join('\n')).toMatch(new RegExp(`--metrics-port ${port}: cannot listen on 127\\.0\\.0\\.1: .*EADDRINUSE.*choose another --metrics-port, or 0 for a free one`));
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
    const help = celeriac(['worker', '--help']);
    expect(await help.exited).toBe(0);
    expect(help.stdout.join('\n')).toMatch(/prefer the variable\s+CELERIAC_METRICS_TOKEN \(a flag is visible to anyone running ps\)/);
  });

  it('explains --metrics-host without --metrics-port, and a bad port', async () => {
    const lonely = celeriac(['worker', '--app', APP, '--metrics-host', '127.0.0.1']);
    expect(await lonely.exited).toBe(2);
    expect(lonely.stderr.join('\n')).toMatch(/--metrics-host and --metrics-token need --metrics-port <n>/);
    const bad = celeriac(['worker', '--app', APP, '--metrics-port', '70000']);
    expect(await bad.exited).toBe(2);
    expect(bad.stderr.join('\n')).toMatch(/--metrics-port must be a port number, 0 to 65535 \(got 70000\)/);
  });
});
