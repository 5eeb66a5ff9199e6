import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);

describe('packaging', () => {
  // A project that installed @celeriac/core alone (no backend packages), as a user would.
  const dir = mkdtempSync(join(tmpdir(), 'celeriac-pkg-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('asks for the backend package by name when a URL needs one that is not installed', async () => {
    mkdirSync(join(dir, 'node_modules', '@celeriac'), { recursive: true });
    symlinkSync(resolve('packages/core'), join(dir, 'node_modules', '@celeriac', 'core'));
    for (const dep of ['zod', 'cron-parser', 'luxon']) symlinkSync(resolve('node_modules', dep), join(dir, 'node_modules', dep));
    const script = `
      const { createApp } = await import('@celeriac/core');
      for (const url of ['redis://127.0.0.1:6379', 'amqp://127.0.0.1']) {
        await createApp({ broker: url }).connection().catch((e) => console.log(e.code + ': ' + e.message));
      }`;
    // --preserve-symlinks: resolve from this project's node_modules, not the monorepo's.
    const { stdout } = await run(process.execPath, ['--preserve-symlinks', '--conditions=@celeriac/source', '--import', resolve('node_modules/tsx/dist/esm/index.mjs'), '--input-type=module', '-e', script], { cwd: dir });
    expect(stdout).toContain('BACKEND: redis:// needs the @celeriac/redis-backend package: run `npm install @celeriac/redis-backend`');
    expect(stdout).toContain('BACKEND: amqp:// needs the @celeriac/amqp-backend package: run `npm install @celeriac/amqp-backend`');
  });
});
