--[[ dead-letters: applies the queue's dead-letter retention, then reads the newest letters.
KEYS[1] the queue's `dead:at` zset, KEYS[2] its `dead:letters` hash (see lib/dead.lua)
ARGV[1] deadMaxCount, ARGV[2] deadMaxAgeMs   retention (lib/dead.lua)
ARGV[3] limit                                most letters to return (≥ 1)
ARGV[4] '1' for their ids only, else ''
Returns: up to `limit` letters, oldest first, as JSON text (or their ids)
]]
--@include clock
--@include dead

trimDead(KEYS[1], KEYS[2], nowMs(), tonumber(ARGV[1]), tonumber(ARGV[2]))
local ids = redis.call('ZRANGE', KEYS[1], -tonumber(ARGV[3]), -1)
if #ids == 0 or ARGV[4] == '1' then return ids end
local out = {}
-- HMGET in chunks: Lua's unpack() takes at most a few thousand values (retention allows 10,000).
for from = 1, #ids, 1000 do
  local chunk = {}
  for i = from, math.min(from + 999, #ids) do chunk[#chunk + 1] = ids[i] end
  for _, entry in ipairs(redis.call('HMGET', KEYS[2], unpack(chunk))) do
    if entry then out[#out + 1] = entry end
  end
end
return out
