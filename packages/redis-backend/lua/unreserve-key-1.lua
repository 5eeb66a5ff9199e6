--[[ unreserve-key: undoes reserve-key-1.lua for a publish that failed, so a later enqueue with the
key publishes again instead of being told "duplicate" of a task that never reached the broker.
A compare-and-delete: only while the key still points at this task id and no outcome is stored.
KEYS[1] the key's record (see claim-key-2.lua)
ARGV[1] taskId (the one the failed publish reserved the key for)
Returns: 1 given back, 0 the key points elsewhere or has an outcome (nothing changed)
]]
if redis.call('HGET', KEYS[1], 'tid') ~= ARGV[1] then return 0 end
if redis.call('HEXISTS', KEYS[1], 'rec') == 1 then return 0 end
-- A claim on the key (its semaphore, another key) stays; a hash left with no field is deleted by Redis itself.
redis.call('HDEL', KEYS[1], 'tid')
return 1
