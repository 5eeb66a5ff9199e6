--[[ delete-record: removes a coordination record (rule 5 of Coordination).
KEYS[1] the kind's records hash, KEYS[2] its expiry index
ARGV[1] id
Returns: 1 when a live record was removed, else 0
]]
--@include clock

local expiry = redis.call('ZSCORE', KEYS[2], ARGV[1])
local removed = redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
if removed == 1 and expiry and tonumber(expiry) > nowMs() then return 1 end
return 0
