--[[ reserve-key: points an idempotency key at its first task id (publish-side dedup for brokers
that keep no shared records themselves, e.g. RabbitMQ with Redis as its result store). The same
record publish-7.lua writes, so both paths agree on a key's owner.
KEYS[1] the key's record (see claim-key-2.lua)
ARGV[1] taskId, ARGV[2] ttlMs (how long the key points at its task)
Returns: the owner's task id: ARGV[1] when the key was free, the earlier task's id otherwise
]]
local tid = redis.call('HGET', KEYS[1], 'tid')
if tid and tid ~= '' then return tid end
redis.call('HSET', KEYS[1], 'tid', ARGV[1])
-- Never shorten the life of the record (it may hold an outcome with a longer TTL).
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return ARGV[1]
