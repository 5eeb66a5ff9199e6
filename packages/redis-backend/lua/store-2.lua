--[[ store: writes a final record (ResultBackend.store, for results kept apart from the broker),
optionally fenced by the task's claim (claim-task-2.lua).
KEYS[1] the record's key, `base .. 'r:' .. id`     KEYS[2] the task's claim, `base .. 'c:' .. id`
ARGV: base, id, record JSON, ttlMs, keyTtlMs, idempotency key or '', state, owner or ''
  owner  when given, the write happens only while `owner` holds the task's claim, and releases it:
         a delivery whose lease moved on (a stale owner) cannot store over the new owner's outcome
Returns: 1 stored (or a stored success kept, results.ts rule 2), 0 fenced out (nothing written)
  A resend (ioredis sends the call again after a reconnect when its reply was lost) finds the
  claim gone with its first execution: it answers 1 if the very record it carries is stored (that
  execution wrote it), so the owner does not take its own stored outcome for a lost lease.
]]
--@include store

local base, id, owner = ARGV[1], ARGV[2], ARGV[8]
if owner ~= '' then
  if redis.call('GET', KEYS[2]) ~= owner then return redis.call('GET', KEYS[1]) == ARGV[3] and 1 or 0 end
  redis.call('DEL', KEYS[2])
end
if storeRecord(base, id, ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7] == 'succeeded', redis.call('GET', KEYS[1])) then
  -- Sharded pub/sub stays on this slot's node in a cluster (PUBLISH would go to every node).
  redis.call('SPUBLISH', base .. 'done', id)
end
return 1
