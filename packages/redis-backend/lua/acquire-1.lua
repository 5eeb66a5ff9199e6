--[[ acquire: a place in a leased semaphore (rule 6 of Coordination).
KEYS[1] the semaphore, a sorted set: holder → lease end (epoch ms on Redis' clock)
ARGV[1] holder, ARGV[2] limit, ARGV[3] leaseMs
Returns: 1 when granted (or extended), 0 when the semaphore is full
]]
--@include clock
--@include semaphore

return acquireHold(KEYS[1], ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), nowMs()) and 1 or 0
