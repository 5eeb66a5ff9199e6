--[[ store: writes a final record (ResultBackend.store, for results kept apart from the broker).
KEYS[1] the record's key, `base .. 'r:' .. id` (routes the call to the queue's slot)
ARGV: base, id, record JSON, ttlMs, keyTtlMs, idempotency key or '', state
Returns: 1 stored, 0 kept the success already stored
]]
--@include store

local base, id = ARGV[1], ARGV[2]
if storeRecord(base, id, ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7] == 'succeeded', redis.call('GET', KEYS[1])) then
  -- Sharded pub/sub stays on this slot's node in a cluster (PUBLISH would go to every node).
  redis.call('SPUBLISH', base .. 'done', id)
  return 1
end
return 0
