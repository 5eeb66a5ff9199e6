--[[ stats: the queue's counts in O(1) (after promoting what is due, as a fetch would).
KEYS: the queue's standard keys (see lib/queue.lua): msg task delayed lease wake dead:at stats
ARGV[1] base          key prefix of the queue
ARGV[2] deadMaxCount  dead-letter retention (lib/dead.lua), applied before counting
ARGV[3] deadMaxAgeMs
Returns: { ready, delayed, inFlight, dead, completed, failed }
]]
--@include clock
--@include queue
--@include dead

local base = ARGV[1]
local now = nowMs()
promote(base, now, 1000)
trimDead(KEYS[6], base .. 'dead:letters', now, tonumber(ARGV[2]), tonumber(ARGV[3]))
local counters = redis.call('HMGET', KEYS[7], 'completed', 'failed')
return {
  readyCount(base),
  redis.call('ZCARD', KEYS[3]),
  redis.call('ZCARD', KEYS[4]),
  redis.call('ZCARD', KEYS[6]),
  tonumber(counters[1]) or 0,
  tonumber(counters[2]) or 0,
}
