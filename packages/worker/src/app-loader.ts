import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { extname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { App } from '@celeriac/core';
import { UsageError } from './usage-error.js';

const TYPESCRIPT = new Set(['.ts', '.mts', '.cts', '.tsx']);

// What Node says when it meets TypeScript it cannot run: no loader at all (Node 20), or type
// stripping that stops at syntax it cannot erase or inside node_modules (Node 22.6+).
const CANNOT_RUN_TYPESCRIPT = new Set(['ERR_UNKNOWN_FILE_EXTENSION', 'ERR_UNSUPPORTED_TYPESCRIPT_SYNTAX', 'ERR_UNSUPPORTED_NODE_MODULES_TYPE_STRIPPING', 'ERR_INVALID_TYPESCRIPT_SYNTAX']);

/**
 * Imports the user's module and finds its app (named export `app`, or the default export).
 * A TypeScript module is loaded through tsx when the project has it: most apps are written in
 * TypeScript, and asking users to build before every `celeriac worker` is the first-hour stumble.
 */
export async function loadApp(path: string): Promise<App> {
  const file = resolve(path);
  const typescript = TYPESCRIPT.has(extname(file));
  const tsx = typescript && !typescriptHookActive() ? findTsx(file) : undefined;
  if (tsx) await import(pathToFileURL(tsx).href); // the same hook as `node --import tsx`
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (err) {
    const code = (err as { code?: string }).code ?? '';
    if (code === 'ERR_MODULE_NOT_FOUND' && String((err as Error).message).includes(file)) {
      throw new UsageError(`--app ${path}: no such module (resolved to ${file})${sourceHint(file)}`);
    }
    if (typescript && !tsx && CANNOT_RUN_TYPESCRIPT.has(code)) {
      throw new UsageError(`--app ${path} is TypeScript and tsx is not installed: run \`npm install --save-dev tsx\` (or build the app and pass the .js file)`);
    }
    throw err;
  }
  const app = (mod.app ?? mod.default) as App | undefined;
  if (!app || typeof app.task !== 'function' || typeof app.connection !== 'function') {
    throw new UsageError(`--app ${path}: the module exports no celeriac app; add \`export const app = createApp({ broker: … })\``);
  }
  return app;
}

/** tsx's loader as the app's own project resolves it (next to the app first, then the working directory). */
function findTsx(file: string): string | undefined {
  for (const from of [file, resolve('package.json')]) {
    try {
      return createRequire(from).resolve('tsx');
    } catch {
      // not installed there
    }
  }
  return undefined;
}

/** True when the process already runs under tsx (`node --import tsx`, `tsx celeriac …`): one hook is enough. */
function typescriptHookActive(): boolean {
  return /\btsx\b/.test([...process.execArgv, process.env.NODE_OPTIONS ?? ''].join(' '));
}

/** For a missing built file, points at the TypeScript source next to where it was expected. */
function sourceHint(file: string): string {
  if (extname(file) !== '.js') return '';
  const ts = file.slice(0, -3) + '.ts';
  return existsSync(ts) ? `; pass the TypeScript file (--app ${ts}) with tsx installed, or build the app first` : '; build your app first if it is TypeScript';
}
