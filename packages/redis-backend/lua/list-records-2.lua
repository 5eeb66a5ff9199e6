--[[ list-records: the live records of a kind, soonest to expire first (rule 4 of Coordination).
KEYS[1] the kind's records hash, KEYS[2] its expiry index
ARGV[1] limit, ARGV[2] '1' for latest to expire first
Returns: { id, JSON, id, JSON, … }
]]
--@include clock
--@include records

local now = nowMs()
pruneExpired(KEYS[1], KEYS[2], now, 1000)
local ids
if ARGV[2] == '1' then
  ids = redis.call('ZREVRANGEBYSCORE', KEYS[2], '+inf', '(' .. now, 'LIMIT', 0, tonumber(ARGV[1]))
else
  ids = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. now, '+inf', 'LIMIT', 0, tonumber(ARGV[1]))
end
if #ids == 0 then return {} end
local values = redis.call('HMGET', KEYS[1], unpack(ids))
local out = {}
for i = 1, #ids do
  if values[i] then
    out[#out + 1] = ids[i]
    out[#out + 1] = values[i]
  end
end
return out
