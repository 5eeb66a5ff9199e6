--[[ discard: removes the named dead letters for good (Broker rule 9).
KEYS[1] the queue's `dead:at` zset, KEYS[2] its `dead:letters` hash (see lib/dead.lua)
ARGV[1..] letter ids (at most 1,000); unknown ones are ignored
Returns: how many letters were removed
]]
local removed = redis.call('ZREM', KEYS[1], unpack(ARGV))
redis.call('HDEL', KEYS[2], unpack(ARGV))
return removed
