--[[ renew-hold: extends one live hold of a leased semaphore (rule 7 of Coordination).
KEYS[1] the semaphore, ARGV[1] holder, ARGV[2] leaseMs
Returns: 1 when the hold was live and is extended, 0 when it had lapsed (it is not revived)
]]
--@include clock

local now = nowMs()
local leaseMs = tonumber(ARGV[2])
local until_ = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not until_ or tonumber(until_) <= now then return 0 end
redis.call('ZADD', KEYS[1], now + leaseMs, ARGV[1])
if redis.call('PTTL', KEYS[1]) < leaseMs then redis.call('PEXPIRE', KEYS[1], leaseMs) end
return 1
