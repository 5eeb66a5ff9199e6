--[[ acquire: a place in a leased semaphore (rule 6 of Coordination).
KEYS[1] the semaphore, a sorted set: holder → lease end (epoch ms on Redis' clock)
ARGV[1] holder, ARGV[2] limit, ARGV[3] leaseMs
Returns: 1 when granted (or extended), 0 when the semaphore is full
]]
--@include clock

local now = nowMs()
local leaseMs = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + leaseMs, ARGV[1])
-- The set lives as long as its longest lease, so an abandoned semaphore leaves nothing behind.
if redis.call('PTTL', KEYS[1]) < leaseMs then redis.call('PEXPIRE', KEYS[1], leaseMs) end
return 1
