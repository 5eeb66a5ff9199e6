#!/usr/bin/env node
// Makes sure the servers the integration tests talk to are reachable on loopback, idempotently:
// a server already listening is left alone; an installed one is started; a missing one is
// installed with apt-get when running as root on Debian; otherwise we stop with what to install.
// Chromium (for the dashboard's browser tests) is installed the same way when missing; where it
// cannot be, we say what to install and go on: those tests then skip themselves, saying why.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';

const SERVICES = [
  {
    name: 'Redis',
    port: 6379,
    binary: 'redis-server',
    apt: ['redis-server', 'redis-tools'],
    start: ['redis-server', ['--daemonize', 'yes', '--bind', '127.0.0.1', '--port', '6379', '--save', '', '--appendonly', 'no']],
    readyWithinMs: 15_000,
  },
  {
    name: 'RabbitMQ',
    port: 5672,
    binary: 'rabbitmq-server',
    apt: ['rabbitmq-server'],
    start: ['rabbitmq-server', ['-detached']],
    readyWithinMs: 90_000,
  },
];

function reachable(port, timeoutMs = 1_000) {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    const done = (ok) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

function which(binary) {
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/usr/lib/rabbitmq/bin'])) {
    if (dir && existsSync(`${dir}/${binary}`)) return `${dir}/${binary}`;
  }
  return null;
}

let aptUpdated = false;
function aptInstall(packages) {
  const isRoot = process.getuid?.() === 0;
  if (!isRoot || !existsSync('/usr/bin/apt-get')) return false;
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  if (!aptUpdated) {
    spawnSync('apt-get', ['update'], { stdio: 'inherit', env });
    aptUpdated = true;
  }
  return spawnSync('apt-get', ['install', '-y', '--no-install-recommends', ...packages], { stdio: 'inherit', env }).status === 0;
}

async function waitFor(port, ms) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await reachable(port)) return true;
    await new Promise((r) => setTimeout(r, 500));
  }
  return false;
}

const problems = [];
for (const svc of SERVICES) {
  if (await reachable(svc.port)) continue;
  let binary = which(svc.binary);
  if (!binary) {
    console.error(`[services] ${svc.name} is not installed; installing ${svc.apt.join(' ')} with apt-get`);
    if (aptInstall(svc.apt)) binary = which(svc.binary);
  }
  if (!binary) {
    problems.push(`${svc.name} is not reachable on 127.0.0.1:${svc.port} and is not installed. Install it (Debian/Ubuntu: sudo apt-get install ${svc.apt.join(' ')}) or start one listening on 127.0.0.1:${svc.port}.`);
    continue;
  }
  const [, args] = svc.start;
  console.error(`[services] starting ${svc.name}: ${binary} ${args.join(' ')}`);
  try {
    execFileSync(binary, args, { stdio: 'inherit' });
  } catch (err) {
    problems.push(`${svc.name}: could not start ${binary}: ${err.message}`);
    continue;
  }
  if (!(await waitFor(svc.port, svc.readyWithinMs))) {
    problems.push(`${svc.name} was started but is not listening on 127.0.0.1:${svc.port} after ${svc.readyWithinMs / 1000}s; check its log.`);
  }
}

// Kept in step with test/support/browser.ts (CHROMIUM), which skips the browser tests without it.
const CHROMIUM = '/usr/bin/chromium';
if (!existsSync(CHROMIUM)) {
  console.error(`[services] ${CHROMIUM} is missing; installing chromium with apt-get`);
  if (!aptInstall(['chromium']) || !existsSync(CHROMIUM)) {
    console.error(`[services] Chromium is not installed, so the dashboard's browser tests will be skipped. Install it (Debian/Ubuntu: sudo apt-get install chromium) so that ${CHROMIUM} exists.`);
  }
}

if (problems.length > 0) {
  console.error(`\nThe integration tests need these servers:\n- ${problems.join('\n- ')}`);
  process.exit(1);
}
console.error(`[services] Redis (127.0.0.1:6379) and RabbitMQ (127.0.0.1:5672) are reachable${existsSync(CHROMIUM) ? `; Chromium is at ${CHROMIUM}` : ''}`);
