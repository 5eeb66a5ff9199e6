import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { removePrefix, uniquePrefix, urlWith } from './redis/helpers.js';

const run = promisify(execFile);
const ROOT = resolve('.');
const PACKAGES = ['core', 'worker', 'redis-backend', 'amqp-backend'];
const installed = (name: string) => (JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;

// npm run exports its settings as npm_* variables (the monorepo's prefix among them): a nested npm
// must not inherit them, or it would install into the monorepo instead of the temporary project.
const cleanEnv = () => Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith('npm_')));

describe('packaging', () => {
  it('asks for the backend package by name when a URL needs one that is not installed', async () => {
    // A project that installed @celeriac/core alone (no backend packages), as a user would.
    const dir = mkdtempSync(join(tmpdir(), 'celeriac-pkg-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
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

/**
 * The packages as a user gets them: `npm pack` of each, installed from the tarballs into a fresh
 * project (dependencies from the npm cache, or the registry), used by a strict TypeScript app.
 * Anything the tarballs forget to ship, or a type that only checks inside the monorepo, fails here.
 */
describe('installed from the packed tarballs', () => {
  let dir = '';
  let project = '';
  const prefix = uniquePrefix('pkg');
  const broker = urlWith(prefix);
  const packed = new Map<string, string[]>();
  const npm = (args: string[], cwd: string) => run('npm', args, { cwd, env: cleanEnv(), maxBuffer: 64 << 20 });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'celeriac-install-'));
    project = join(dir, 'project');
    // `prepack` builds each package first (tsc -b: quick when dist is current).
    const { stdout } = await npm(['pack', '--json', '--pack-destination', dir, ...PACKAGES.flatMap((p) => ['-w', `packages/${p}`])], ROOT);
    const tarballs: string[] = [];
    for (const entry of JSON.parse(stdout) as { name: string; filename: string; files: { path: string }[] }[]) {
      packed.set(entry.name, entry.files.map((f) => f.path));
      tarballs.push(join(dir, entry.filename));
    }
    cpSync(resolve('test/fixtures/packaging'), project, { recursive: true });
    const deps = [`zod@${installed('zod')}`, `tsx@${installed('tsx')}`, `@types/node@${installed('@types/node')}`];
    await npm(['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', ...tarballs, ...deps], project);
  }, 300_000);

  afterAll(async () => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    await removePrefix(prefix);
  });

  it('ships licence, README, built code, types and Lua, and no tests', () => {
    expect([...packed.keys()].sort()).toEqual(PACKAGES.map((p) => `@celeriac/${p}`).sort());
    for (const [name, files] of packed) {
      for (const needed of ['LICENSE', 'README.md', 'package.json', 'dist/index.js', 'dist/index.d.ts']) expect(files, `${name} ships ${needed}`).toContain(needed);
      expect(files.filter((f) => /\.test\.|(^|\/)testing\.ts$|tsbuildinfo/.test(f)), `${name} ships no tests`).toEqual([]);
    }
    expect(packed.get('@celeriac/worker')).toContain('bin/celeriac.mjs');
    expect(packed.get('@celeriac/core')).toContain('dist/testing/index.js');
    expect(packed.get('@celeriac/redis-backend')!.filter((f) => f.startsWith('lua/')).length).toBeGreaterThan(5);
    for (const p of PACKAGES) {
      const manifest = JSON.parse(readFileSync(join(project, 'node_modules', '@celeriac', p, 'package.json'), 'utf8')) as Record<string, unknown>;
      expect(manifest.engines, p).toEqual({ node: '>=20.19' });
      expect(manifest.license, p).toBe('MIT');
    }
  });

  it('installs one copy of core and of zod, and refuses zod 3 at install time', async () => {
    for (const p of ['worker', 'redis-backend', 'amqp-backend']) {
      for (const nested of ['@celeriac/core', 'zod']) expect(existsSync(join(project, 'node_modules', '@celeriac', p, 'node_modules', nested)), `${p} has its own ${nested}`).toBe(false);
    }
    // A project on zod 3 that adds celeriac is stopped by npm, naming the peer, instead of failing later in tsc.
    const zod3 = join(dir, 'zod3');
    mkdirSync(zod3);
    writeFileSync(join(zod3, 'package.json'), JSON.stringify({ name: 'zod3-user', private: true, dependencies: { zod: '^3.25.0' } }));
    const core = join(dir, readdirSync(dir).find((f) => f.startsWith('celeriac-core-'))!);
    const refused = await npm(['install', '--dry-run', '--prefer-offline', '--no-audit', '--no-fund', core], zod3).then(
      () => 'installed',
      (err: { stderr: string }) => err.stderr,
    );
    expect(refused).toMatch(/ERESOLVE unable to resolve dependency tree/);
    expect(refused).toMatch(/peer zod@"\^4\.0\.0" from @celeriac\/core@/);
  }, 60_000);

  it('type-checks a strict app with skipLibCheck: false, under module nodenext and moduleResolution bundler', async () => {
    const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    const check = (config: string) => run(process.execPath, [tsc, '-p', config], { cwd: project }).then(() => '', (err: { stdout: string }) => err.stdout);
    const [nodenext, bundler] = await Promise.all([check('tsconfig.nodenext.json'), check('tsconfig.bundler.json')]);
    expect(nodenext).toBe('');
    expect(bundler).toBe('');
    expect(existsSync(join(project, 'dist', 'app.js'))).toBe(true);
  }, 300_000);

  it('serves require() users (CommonJS, module nodenext)', async () => {
    const { stdout } = await run(process.execPath, ['dist/require.cjs'], { cwd: project });
    expect(stdout.trim()).toBe('require ok 42');
  }, 30_000);

  for (const app of ['src/app.ts', 'dist/app.js']) {
    it(`runs \`celeriac worker --app ${app}\` from the installed command and answers through Redis`, async () => {
      const worker = command(join(project, 'node_modules', '.bin', 'celeriac'), ['worker', '--app', app, '--broker', broker], project);
      await worker.waitFor(/worker started/);
      const { stdout } = await run(process.execPath, ['dist/producer.js'], { cwd: project, env: { ...process.env, CELERIAC_BROKER_URL: broker } });
      expect(stdout.trim()).toBe('sum 5');
      worker.child.kill('SIGTERM');
      expect(await worker.closed, worker.stderr()).toBe(0);
      expect(worker.stderr()).toMatch(/worker stopped/);
    }, 60_000);
  }

  it('runs `celeriac beat --app src/app.ts`', async () => {
    const beat = command(join(project, 'node_modules', '.bin', 'celeriac'), ['beat', '--app', 'src/app.ts', '--broker', broker], project);
    await beat.waitFor(/"schedule":"pkg.hourly"/);
    beat.child.kill('SIGTERM');
    expect(await beat.closed, beat.stderr()).toBe(0);
    expect(beat.stderr()).toMatch(/scheduler stopped/);
  }, 60_000);

  it('says in one line what to install when a .ts app meets a project without tsx, or a .js app is not built', async () => {
    const bare = join(dir, 'bare');
    mkdirSync(bare);
    writeFileSync(join(bare, 'app.ts'), 'enum Colour { Red }\nexport const app = Colour.Red;\n');
    const result = await run(process.execPath, [join(project, 'node_modules', '@celeriac', 'worker', 'bin', 'celeriac.mjs'), 'worker', '--app', 'app.ts'], { cwd: bare }).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code: number; stderr: string }) => err,
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toBe('celeriac: --app app.ts is TypeScript and tsx is not installed: run `npm install --save-dev tsx` (or build the app and pass the .js file)\n');
    // A built file that is not there, next to its TypeScript source: point at the source.
    const unbuilt = await run(process.execPath, [join(project, 'node_modules', '.bin', 'celeriac'), 'worker', '--app', 'src/app.js'], { cwd: project }).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code: number; stderr: string }) => err,
    );
    expect(unbuilt.code).toBe(2);
    expect(unbuilt.stderr).toBe(`celeriac: --app src/app.js: no such module (resolved to ${join(project, 'src', 'app.js')}); pass the TypeScript file (--app ${join(project, 'src', 'app.ts')}) with tsx installed, or build the app first\n`);
  }, 30_000);

  it('stops the worker gracefully when `npx celeriac worker` gets SIGTERM (npm does not pass it on)', async () => {
    const npx = command('npx', ['--no-install', 'celeriac', 'worker', '--app', 'dist/app.js', '--broker', broker], project);
    await npx.waitFor(/worker started/);
    const started = descendants(npx.child.pid!); // npm's shell and the worker under it
    try {
      expect(started.length).toBeGreaterThan(0);
      npx.child.kill('SIGTERM');
      // `closed` waits for every holder of the output pipes, the orphaned worker included.
      await within(npx.closed, 30_000, 'the worker did not exit after npx got SIGTERM');
      expect(npx.stderr()).toMatch(/npm exited without passing on its signal; stopping gracefully/);
      expect(npx.stderr()).toMatch(/worker stopped/);
      expect(started.filter(alive)).toEqual([]);
    } finally {
      for (const pid of started.filter(alive)) process.kill(pid, 'SIGKILL');
    }
  }, 60_000);
});

const children = new Set<ChildProcess>();
afterAll(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

/** Runs a command; `closed` resolves once every process writing to its pipes has exited. */
function command(file: string, args: string[], cwd: string) {
  const child: ChildProcess = spawn(file, args, { cwd, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let stderr = '';
  const waiters: { pattern: RegExp; resolve: () => void }[] = [];
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    for (const w of waiters.filter((w) => w.pattern.test(stderr))) w.resolve();
  });
  child.stdout!.resume();
  const closed = new Promise<number | null>((done) => child.on('close', (code) => done(code)));
  return {
    child,
    closed,
    stderr: () => stderr,
    waitFor: (pattern: RegExp, timeoutMs = 30_000) =>
      new Promise<void>((done, fail) => {
        if (pattern.test(stderr)) return done();
        const timer = setTimeout(() => fail(new Error(`no ${pattern} within ${timeoutMs} ms; stderr:\n${stderr}`)), timeoutMs);
        waiters.push({ pattern, resolve: () => (clearTimeout(timer), done()) });
        void closed.then(() => fail(new Error(`exited before ${pattern}; stderr:\n${stderr}`)));
      }),
  };
}

/** Every process below `pid`, from /proc (Linux). */
function descendants(pid: number): number[] {
  const rows: [number, number][] = [];
  for (const entry of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    try {
      // pid (comm) state ppid …: the command name may hold spaces and parentheses, so read after the last ')'.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      rows.push([Number(entry), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])]);
    } catch {
      // exited while we looked
    }
  }
  const found: number[] = [];
  for (let frontier = [pid]; frontier.length > 0; ) {
    frontier = rows.filter(([, parent]) => frontier.includes(parent)).map(([child]) => child);
    found.push(...frontier);
  }
  return found;
}

/** Running, not merely a zombie waiting for a PID 1 that does not reap (some containers). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, fail) => (timer = setTimeout(() => fail(new Error(`${what} within ${ms} ms`)), ms)));
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}
