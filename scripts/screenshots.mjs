#!/usr/bin/env node
// Regenerates docs/images/dashboard-overview.png and docs/images/dashboard-task.png (the README's
// screenshots), the one command for it: runs only the screenshot test of
// test/dashboard-browser-pages.test.ts with SCREENSHOTS=1. It drives a small shop's traffic on Redis (four
// queues, a worker, retries, declined charges, a paused queue) for SCREENSHOTS_WARMUP_MS (default
// 90 s) so the rate charts have a history, then saves the two pages at 1280 px in the light scheme.
// What it needs: scripts/services.mjs first brings up Redis and RabbitMQ on loopback (and Chromium),
// installing them as root on Debian; the test file's setup then starts a 3-node Redis Cluster on
// 127.0.0.1:7001-7003 (test/redis/cluster.ts), as for every run of it.
// (Every ordinary run of the browser tests also saves quick screenshots in .cache/screenshots/.)
// Usage: npm run screenshots
import { spawnSync } from 'node:child_process';

const run = (cmd, args, env = {}) => spawnSync(cmd, args, { stdio: 'inherit', env: { ...process.env, ...env } }).status ?? 1;

if (run(process.execPath, ['scripts/services.mjs']) !== 0) process.exit(1);
const status = run('npx', ['vitest', 'run', 'test/dashboard-browser-pages.test.ts', '-t', 'screenshots'], { SCREENSHOTS: '1' });
if (status === 0) console.error('[screenshots] saved docs/images/dashboard-overview.png and docs/images/dashboard-task.png');
process.exit(status);
