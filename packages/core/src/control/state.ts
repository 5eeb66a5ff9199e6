import type { Connection } from '../app.js';
import type { TaskRef } from '../results.js';
import { MAX_LISTED, runningOn } from './registry.js';
import { GLOBAL_SCOPE, type Coordination } from '../coordination.js';
import { ControlUnavailableError } from '../errors.js';

/**
 * The control plane's shared state, as records of the coordination store (see
 * docs/design/control-plane.md). Every rule about it lives here and in control.ts, once, for
 * every backend: the backends only keep records.
 */
export const KINDS = {
  /** `paused/<queue>` in the global scope: workers do not fetch from the queue. */
  paused: 'paused',
  /** `revoked/<task id>` in the global scope: the task is not run, nor retried. */
  revoked: 'revoked',
} as const;

/** How often a worker asks whether the control state changed (one read), so changes apply within about a second. */
export const CONTROL_POLL_MS = 1_000;

/** How many revocations a worker reads at most; more than that live at once is logged. */
export const MAX_REVOCATIONS = 100_000;

/** How long a revocation is kept: the result TTL, and at least a week (a delayed task must still find it). */
export const MIN_REVOCATION_TTL_MS = 7 * 24 * 3_600_000;

export interface Revocation {
  /** The task's queue when the revoker knew it. */
  queue: string | null;
  /** Also abort the task if it is running. */
  terminate: boolean;
  /** Epoch ms of the revoke. */
  at: number;
}

export interface PauseRecord {
  at: number;
}

/** What a worker needs to know of the control state; `version` changes whenever the rest may have. */
export interface ControlState {
  version: number;
  paused: ReadonlySet<string>;
  revoked: ReadonlyMap<string, Revocation>;
}

export const EMPTY_CONTROL_STATE: ControlState = { version: 0, paused: new Set(), revoked: new Map() };

/** The store's coordination primitives, or a `ControlUnavailableError` naming the fix. */
export function coordinationOf(conn: Connection, feature: string): Coordination {
  const coordination = conn.results.coordination;
  if (!coordination) throw new ControlUnavailableError(feature);
  return coordination;
}

/**
 * Reads the whole control state. The version is read first: a change made while the records are
 * read bumps it again, so the next poll reads again and nothing is missed.
 */
export async function readControlState(coordination: Coordination): Promise<ControlState & { truncated: boolean }> {
  const version = await coordination.version(GLOBAL_SCOPE);
  const [paused, revoked] = await Promise.all([
    coordination.listRecords(GLOBAL_SCOPE, KINDS.paused, { limit: MAX_LISTED.queues }),
    // Newest first (they share one TTL): past the limit, the oldest are the ones left out.
    coordination.listRecords(GLOBAL_SCOPE, KINDS.revoked, { limit: MAX_REVOCATIONS, latestFirst: true }),
  ]);
  return {
    version,
    paused: new Set(paused.map((r) => r.id)),
    revoked: new Map(revoked.map((r) => [r.id, r.value as Revocation])),
    truncated: revoked.length >= MAX_REVOCATIONS,
  };
}

/** The revocation of task `id`, or null (also where the store keeps no coordination state). */
export async function revocationOf(coordination: Coordination | null, id: string): Promise<Revocation | null> {
  if (!coordination) return null;
  const [revocation] = await coordination.getRecords(GLOBAL_SCOPE, KINDS.revoked, [id]);
  return (revocation as Revocation | null) ?? null;
}

/**
 * How long after a revoke every worker has surely seen it (two control polls) and a task it had
 * started shows in the registry (a worker writes its record soon after each start): from then on,
 * a revoked task that is not running and has no outcome will never run.
 */
export const REVOCATION_SETTLED_MS = 2 * CONTROL_POLL_MS + 2_000;

/**
 * Whether a revoked task will end `revoked` without running, so a handle can say so at once: no
 * outcome is stored, the revocation is older than `REVOCATION_SETTLED_MS`, and the task is not
 * running (the broker's `active` state where it tracks states, else the worker registry). Before
 * that, a worker that had not seen the revoke may have started it: the handle waits for its outcome.
 */
export async function revokedUnrun(conn: Connection, ref: TaskRef): Promise<boolean> {
  const coordination = conn.results.coordination;
  const [stored, revocation] = await Promise.all([conn.results.get(ref), revocationOf(coordination, ref.id)]);
  if (stored || !revocation || (revocation.queue !== null && revocation.queue !== ref.queue)) return false;
  if (Date.now() - revocation.at < REVOCATION_SETTLED_MS) return false;
  const active = conn.broker.capabilities.taskStates ? (await conn.broker.state(ref)) === 'active' : (await runningOn(coordination!, ref.id)) !== null;
  return !active;
}
