--[[ dead-letters: applies the queue's dead-letter retention, then reads the newest letters.
KEYS[1] the queue's `dead:at` zset, KEYS[2] its `dead:letters` hash (see lib/dead.lua)
ARGV[1] deadMaxCount, ARGV[2] deadMaxAgeMs   retention (lib/dead.lua)
ARGV[3] limit                                most letters to return (≥ 1)
ARGV[4] '1' for their ids only, else ''
ARGV[5] budget   bytes of letters a reply may hold: newest first, no letter is read once the reply
                 holds this many (the newest always is), so big letters cannot make the script
                 (which blocks Redis) copy gigabytes; fewer than `limit` then come back
Returns: up to `limit` letters, oldest first, as JSON text (or their ids: no budget, ids are small)
]]
--@include clock
--@include dead

trimDead(KEYS[1], KEYS[2], nowMs(), tonumber(ARGV[1]), tonumber(ARGV[2]))
local ids = redis.call('ZRANGE', KEYS[1], -tonumber(ARGV[3]), -1)
if #ids == 0 or ARGV[4] == '1' then return ids end
local budget = tonumber(ARGV[5])
-- One letter at a time from the newest (not one HMGET of them all), to stop at the budget.
local newest, bytes = {}, 0
for i = #ids, 1, -1 do
  if bytes >= budget then break end
  local entry = redis.call('HGET', KEYS[2], ids[i])
  if entry then
    bytes = bytes + #entry
    newest[#newest + 1] = entry
  end
end
local out = {}
for i = #newest, 1, -1 do out[#out + 1] = newest[i] end
return out
