--[[ store: writes a final record (ResultBackend.store, for results kept apart from the broker).
KEYS[1] the record's key, `base .. 'r:' .. id` (routes the call to the queue's slot)
ARGV: base, id, record JSON, ttlMs, keyTtlMs, idempotency key or '', state
Returns: 1
]]
--@include store

storeRecord(ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7])
return 1
