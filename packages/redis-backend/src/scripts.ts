import { readFileSync, readdirSync } from 'node:fs';
import type { Cluster, Redis } from 'ioredis';

// Scripts live in ../lua (from src/ and from dist/ alike), one per file, named
// `<name>-<numKeys>.lua`. `--@include <lib>` pulls in a shared fragment from ../lua/lib: plain text
// substitution at load time, so there is no build or code-generation step.
const LUA_DIR = new URL('../lua/', import.meta.url);

export type ScriptName =
  | 'publish'
  | 'fetch'
  | 'settle'
  | 'renew'
  | 'stats'
  | 'peek'
  | 'dead-letters'
  | 'redrive'
  | 'discard'
  | 'purge'
  | 'store'
  | 'claim-key'
  | 'release-key'
  | 'release-task'
  | 'claim-task'
  | 'reserve-key'
  | 'unreserve-key'
  | 'advance-mark'
  | 'put-record'
  | 'get-records'
  | 'list-records'
  | 'delete-record'
  | 'acquire'
  | 'renew-hold';

export interface Script {
  name: ScriptName;
  numberOfKeys: number;
  lua: string;
}

let cached: Map<ScriptName, Script> | undefined;

export function loadScripts(): Map<ScriptName, Script> {
  if (cached) return cached;
  const scripts = new Map<ScriptName, Script>();
  for (const file of readdirSync(LUA_DIR)) {
    const match = /^([a-z-]+)-(\d+)\.lua$/.exec(file);
    if (!match) continue;
    const name = match[1] as ScriptName;
    scripts.set(name, { name, numberOfKeys: Number(match[2]), lua: expand(readFileSync(new URL(file, LUA_DIR), 'utf8')) });
  }
  return (cached = scripts);
}

function expand(source: string): string {
  return source.replace(/^--@include ([a-z]+)$/gm, (_, lib: string) => readFileSync(new URL(`lib/${lib}.lua`, LUA_DIR), 'utf8'));
}

export type Client = Redis | Cluster;
type Args = (string | number)[];

/**
 * Runs the scripts by name on one client. ioredis sends EVALSHA and falls back to EVAL on NOSCRIPT
 * (a restarted or failed-over server), so the scripts survive a server that forgot them.
 */
export class Scripts {
  readonly #client: Client;

  constructor(client: Client) {
    this.#client = client;
    for (const script of loadScripts().values()) {
      if (!(commandName(script.name) in client)) {
        client.defineCommand(commandName(script.name), { numberOfKeys: script.numberOfKeys, lua: script.lua });
      }
    }
  }

  run(name: ScriptName, keys: readonly string[], args: Args): Promise<unknown> {
    const command = (this.#client as unknown as Record<string, (...a: Args) => Promise<unknown>>)[commandName(name)]!;
    return command.call(this.#client, ...keys, ...args);
  }
}

const commandName = (name: ScriptName) => `celeriac_${name.replace('-', '_')}`;
