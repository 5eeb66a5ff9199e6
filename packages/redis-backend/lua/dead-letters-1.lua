--[[ dead-letters: applies the queue's dead-letter retention, then reads the newest entries.
KEYS[1] the queue's dead list (see lib/queue.lua)
ARGV[1] deadMaxCount, ARGV[2] deadMaxAgeMs   retention (lib/dead.lua)
ARGV[3] limit                                most entries to return (≥ 1)
Returns: up to `limit` entries, oldest first, as JSON text
]]
--@include clock
--@include dead

trimDead(KEYS[1], nowMs(), tonumber(ARGV[1]), tonumber(ARGV[2]))
return redis.call('LRANGE', KEYS[1], -tonumber(ARGV[3]), -1)
