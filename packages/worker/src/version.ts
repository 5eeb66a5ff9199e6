import { readFileSync } from 'node:fs';

/** This package's version (from its package.json, which ships beside `dist/` and `src/`). */
export const VERSION: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
