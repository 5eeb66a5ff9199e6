/**
 * The lease on RabbitMQ is the unacked delivery. While the owner's event loop runs, the client
 * enforces `leaseMs` itself (Leases); while it is blocked nothing in the owner runs, and only
 * RabbitMQ can take the delivery back — by closing the owner's connection when heartbeats stop.
 * RabbitMQ (3.x) closes a connection after about two missed heartbeat intervals, checked on a
 * heartbeat tick: measured 2–3 × the negotiated heartbeat (8.8 s with `heartbeat=3`). So:
 *
 *   takeover of a blocked owner's task ≤ TAKEOVER_HEARTBEATS × heartbeat (+ redelivery, ~ms)
 *
 * and a heartbeat of at most leaseMs / TAKEOVER_HEARTBEATS keeps that within the lease.
 */
export const TAKEOVER_HEARTBEATS = 3;

/** The largest heartbeat (whole seconds, ≥ 1) whose takeover bound fits in `leaseMs`. */
export function heartbeatForLease(leaseMs: number): number {
  return Math.max(1, Math.floor(leaseMs / 1_000 / TAKEOVER_HEARTBEATS));
}

/** The documented bound on taking over a blocked owner's task, for a negotiated heartbeat (0 = none: unbounded). */
export function takeoverBoundMs(heartbeatS: number): number {
  return heartbeatS > 0 ? TAKEOVER_HEARTBEATS * heartbeatS * 1_000 : Infinity;
}

/** The heartbeat (s) RabbitMQ and amqplib agreed on for a connection; 0 when none. */
export function negotiatedHeartbeat(model: unknown): number {
  return Number((model as { connection?: { heartbeat?: unknown } }).connection?.heartbeat ?? 0) || 0;
}

/**
 * What a Link can do to fit its heartbeat to a lease: use `heartbeatS` from the next connect on.
 * Returns false when the heartbeat was pinned by the user (`?heartbeat=` or the `heartbeatS`
 * option) and must not be changed. (Proposed for link.ts; until a Link has it, the broker warns.)
 */
export interface Retunable {
  retune?(heartbeatS: number): boolean;
}
