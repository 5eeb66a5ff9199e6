--[[ get-records: reads coordination records by id, in order (rule 3 of Coordination).
KEYS[1] the kind's records hash, KEYS[2] its expiry index
ARGV the ids
Returns: one JSON string per id, or false for a missing or expired record
]]
--@include clock

local now = nowMs()
local values = redis.call('HMGET', KEYS[1], unpack(ARGV))
local expiries = redis.call('ZMSCORE', KEYS[2], unpack(ARGV))
for i = 1, #ARGV do
  if not expiries[i] or tonumber(expiries[i]) <= now then values[i] = false end
end
return values
