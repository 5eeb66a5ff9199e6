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
local out = {}
-- HMGET in chunks: Lua's unpack() takes at most a few thousand values.
for from = 1, #ids, 1000 do
  local chunk = {}
  for i = from, math.min(from + 999, #ids) do chunk[#chunk + 1] = ids[i] end
  local values = redis.call('HMGET', KEYS[1], unpack(chunk))
  for i = 1, #chunk do
    if values[i] then
      out[#out + 1] = chunk[i]
      out[#out + 1] = values[i]
    end
  end
end
return out
