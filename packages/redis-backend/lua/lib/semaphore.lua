-- Shared: a leased semaphore (Coordination rule 6), a sorted set holder → lease end (ms on
-- Redis' clock) that expires with its longest lease. Idempotency key claims are one of these
-- with a limit of 1 (`<base>sem:key:<key>`), so every lease in the store is the same structure.
local function acquireHold(sem, holder, limit, leaseMs, now)
  redis.call('ZREMRANGEBYSCORE', sem, '-inf', now)
  if not redis.call('ZSCORE', sem, holder) and redis.call('ZCARD', sem) >= limit then return false end
  redis.call('ZADD', sem, now + leaseMs, holder)
  if redis.call('PTTL', sem) < leaseMs then redis.call('PEXPIRE', sem, leaseMs) end
  return true
end
